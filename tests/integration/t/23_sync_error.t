# SPDX-License-Identifier: BSD-3-Clause
# A failed sync of the data file stops gearraftd at once (power-cut variant
# only). After an EIO from fdatasync, Linux may have dropped the pages it
# could not write, and a later sync that succeeds says nothing about them;
# so gearraftd acknowledges nothing more and exits with status 1, saying
# why, like a crash. The power-cut library (tests/integration/powercut.c)
# fails every sync while a file exists and loses the writes those syncs
# covered; after the exit the data file is put back as a power cut would
# leave it and gearraftd restarts: the job acknowledged before the failure
# is there, the one whose sync failed was never acknowledged and is not.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $powercut = $ENV{GR_POWERCUT_LIB};
plan(skip_all => 'needs GR_POWERCUT_LIB (the power-cut variant, gearraftd)')
  unless $powercut && is_gearraftd();

my $srv = start_server(need_own => 1,
                       env => powercut_env(GR_POWERCUT_FAIL_FILE => 'fail-syncs'));
my $dir = $srv->dir;

my $c = $srv->conn;
$c->send_pkt(SUBMIT_JOB_BG, 'syncerr', '', 'before');
my $p = $c->read_pkt(30);
is($p && $p->{name}, 'JOB_CREATED', 'a job acknowledged while the disk works');

open(my $f, '>', "$dir/fail-syncs") or die "create: $!";
close $f;
$c->send_pkt(SUBMIT_JOB_BG, 'syncerr', '', 'during');
$p = $c->read_pkt(30);
ok(!$p || $p->{eof}, 'the submission whose sync fails is not acknowledged: the connection closes')
  or diag("got $p->{name}");
my $st = $srv->wait_exit(30);
ok(defined $st && ($st >> 8) == 1, 'gearraftd exited with status 1')
  or diag(defined $st ? "status $st" : 'still running');
my $log = do { local (@ARGV, $/) = ($srv->{log}); <> } // '';
like($log, qr/syncing the data file failed|committing a batch failed/,
     'the log says which write failed');
like($log, qr/stopping now/, 'and that it stopped');

unlink "$dir/fail-syncs";
ok($srv->cut_power,
   'data.mdb replaced by its image at the last good sync');
$srv->start_again;
is_deeply($srv->status->{syncerr}, [1, 0, 0],
          'after the restart: the acknowledged job is queued, the other is not');
my $w = $srv->conn;
$w->can_do('syncerr');
my $a = $w->grab;
is($a->{args}[2], 'before', 'and it is the acknowledged one');
done_testing();
