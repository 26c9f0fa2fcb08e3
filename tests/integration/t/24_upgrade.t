# SPDX-License-Identifier: BSD-3-Clause
# Upgrading keeps the queue: a data directory written in the first on-disk
# format (format 1: gearraftd up to 918be47, which kept a second unique-key
# index) opens with this build. Every queued job is still there, unique
# keys (and a "-" key, which coalesces by payload) still coalesce,
# GET_STATUS_UNIQUE finds a job by its key, and the jobs run with their
# payloads. The fixture (data/format1/data.mdb) holds four background jobs
# of function upfn with unique keys key-1, key-2, key-3 and "-"; how it was
# made is in tests/integration/README.md. gearmand has no data directory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Copy ();
use GRTest;
use Test::More;

plan(skip_all => 'the data directory format is gearraftd\'s')
  unless is_gearraftd();

my $srv = start_server(need_own => 1);
$srv->stop(20);
my $dd = $srv->datadir;
unlink glob("$dd/*");
File::Copy::copy("$FindBin::Bin/../data/format1/data.mdb", "$dd/data.mdb")
  or die "copy: $!";
$srv->start_again;

is_deeply($srv->status->{upfn}, [4, 0, 0], 'the four queued jobs are kept');

my $c = $srv->conn;
$c->submit(SUBMIT_JOB_BG, 'upfn', 'key-2', 'another payload');
$c->submit(SUBMIT_JOB_BG, 'upfn', '-', 'dash-payload');
is_deeply($srv->status->{upfn}, [4, 0, 0],
          'a known unique key and a "-" key with the same payload coalesce');

$c->send_pkt(GET_STATUS_UNIQUE, 'key-3');
is($c->expect(STATUS_RES_UNIQUE)->{data}, join("\0", 'key-3', 1, 0, 0, 0, 0),
   'GET_STATUS_UNIQUE finds a job of the old directory by its key');

my $w = $srv->conn;
$w->can_do('upfn');
my @ran;
for (1 .. 5) {
  my $a = $w->grab;
  last if $a->{name} eq 'NO_JOB';
  push @ran, $a->{args}[-1];
  $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
}
is_deeply([sort @ran], [qw(dash-payload payload-1 payload-2 payload-3)],
          'each job runs once, with its payload');
$w->sync;
ok(wait_until(sub { !$srv->status->{upfn} || $srv->status->{upfn}[0] == 0 }, 5),
   'nothing left queued');

$c->submit(SUBMIT_JOB_BG, 'upfn', 'key-1', 'new');
is($srv->status->{upfn}[0], 1, 'a finished key is free again');

# And the converted directory opens again after a restart.
ok($srv->stop(20) == 0, 'clean stop');
$srv->start_again;
is($srv->status->{upfn}[0], 1, 'reopened: the new job is there');
$_->close for $c, $w;
done_testing();
