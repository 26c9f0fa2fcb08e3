# SPDX-License-Identifier: BSD-3-Clause
# JOB_CREATED leaves only once its batch is durable, even when the batch
# after it writes nothing (power-cut variant only, gearraftd).
#
# A client pipelines a background submission and, a moment later, a
# second one with a unique key over 64 bytes. The first one's batch
# commits; the second is refused before it becomes a command (ERROR
# ARGUMENT_TOO_LARGE, a reply with nothing to store), so the next batch
# writes nothing - and LMDB commits an unchanged transaction without a
# sync, so that commit proves nothing about the one before. The client
# reads JOB_CREATED and at once the server is SIGKILLed and restarted on
# the data file as a power cut would leave it (tests/integration/
# powercut.c, syncs slowed by 20 ms so that an early JOB_CREATED would beat
# the sync). The job must be queued after the restart, every round.
#
# "A moment later" is an event, not a pause: powercut.c writes a byte to
# a FIFO as each sync of the data file begins, and the second submission
# leaves when the first one's commit has begun its sync.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $powercut = $ENV{GR_POWERCUT_LIB};
plan(skip_all => 'needs GR_POWERCUT_LIB (the power-cut variant, gearraftd)')
  unless $powercut && is_gearraftd();

my $ROUNDS = 5;
my $syncs = sync_watch();
my $srv = start_server(
  need_own => 1,
  env => powercut_env(GR_POWERCUT_SLOW_SYNC_US => 20000,
                      GR_POWERCUT_SYNC_FIFO => $syncs->fifo));
my $dir = $srv->dir;

for my $r (1 .. $ROUNDS) {
  my $c = $srv->conn;
  $c->sync;        # the server is up and writes nothing now
  $syncs->forget;  # (its start synced)
  $c->send_pkt(SUBMIT_JOB_BG, "acks$r", '', "payload $r");
  # The submission's batch is being synced (20 ms more), so the refusal
  # is the next batch, on its own.
  ok($syncs->await, "round $r: the submission's commit is syncing");
  $c->send_pkt(SUBMIT_JOB_BG, "acks$r", 'u' x 65, 'refused');
  my $p = $c->read_pkt(30);
  is($p && $p->{name}, 'JOB_CREATED', "round $r: JOB_CREATED first");
  $srv->kill('KILL');    # at once: the power goes
  ok($srv->cut_power,
     "round $r: data.mdb replaced by its image at the last sync");
  $srv->start_again;
  is_deeply($srv->status->{"acks$r"}, [1, 0, 0],
            "round $r: the acknowledged job survived the power cut");
}
done_testing();
