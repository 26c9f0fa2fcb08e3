# SPDX-License-Identifier: BSD-3-Clause
# Requests that pile up while a commit syncs go into the next batch
# together, whatever their size (power-cut variant only, gearraftd: its
# library slows the syncs and says when one begins).
#
# A client submits a small background job; while that batch syncs (300 ms,
# slowed), it sends a small job and a 64 MiB one in one write, so that the
# next batch holds both. gearraftd once refused that batch whole - ERROR
# for both, though nothing was wrong with either: its Raft core held back
# a proposal past 64 MiB not yet committed, a limit meant for followers
# that a lone node does not have. The same happened, now and then, to a
# worker whose 64 MiB WORK_COMPLETE arrived in the batch of the GRAB_JOB
# it answered (tests/bench's big case failed so).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $powercut = $ENV{GR_POWERCUT_LIB};
plan(skip_all => 'needs GR_POWERCUT_LIB (the power-cut variant, gearraftd)')
  unless $powercut && is_gearraftd();

my $syncs = sync_watch();
my $srv = start_server(
  need_own => 1,
  env => powercut_env(GR_POWERCUT_SLOW_SYNC_US => 300000,
                      GR_POWERCUT_SYNC_FIFO => $syncs->fifo));

my $MIB = 1 << 20;
my $block = pack('N*', 0 .. $MIB / 4 - 1);
# 64 MiB, every MiB tagged with its place.
my $big = join('', map { sprintf('<%05d>', $_) . substr($block, 7) } 0 .. 63);

my $c = $srv->conn;
$c->sync;
$syncs->forget;    # the start's syncs
$c->send_pkt(SUBMIT_JOB_BG, 'pile', 'u1', 'first');
ok($syncs->await, 'the first job\'s commit is syncing');
$c->send_raw(GRTest::Conn::encode(SUBMIT_JOB_BG, 'pile', 'u2', 'small')
             . GRTest::Conn::encode(SUBMIT_JOB_BG, 'pile', 'u3', $big));
my @h;
for my $n (1 .. 3) {
  my $p = $c->read_pkt(60);
  is($p && $p->{name}, 'JOB_CREATED', "job $n created")
    or diag($p ? "$p->{name}: " . substr($p->{data}, 0, 200) : 'no answer');
  push @h, $p->{data} if $p && $p->{name} eq 'JOB_CREATED';
}
is_deeply($srv->status->{pile}, [3, 0, 0], 'all three queued');

my $w = $srv->conn;
$w->can_do('pile');
my %got;
for my $n (1 .. 3) {
  my $a = $w->grab;
  last unless $a->{name} eq 'JOB_ASSIGN';
  $got{$a->{args}[0]} = $a->{args}[2];
  $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
}
ok(@h == 3 && $got{$h[0]} eq 'first' && $got{$h[1]} eq 'small'
   && $got{$h[2]} eq $big, 'each handed out whole, the 64 MiB one too');
$w->sync;
is_deeply($srv->status->{pile}, [0, 0, 1], 'and done (the worker still connected)');
done_testing();
