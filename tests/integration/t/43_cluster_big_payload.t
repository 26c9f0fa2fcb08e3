# SPDX-License-Identifier: BSD-3-Clause
# A large job through a three-node cluster: a 32 MiB foreground job
# submitted on n1, run by a worker on n2 that answers with 32 MiB of its
# own; the client gets the result whole, and the cluster keeps its
# leader and term throughout. Two things hold raft/'s messages up, and
# the nodes' loops stand in for them (node/liveness.c, gr_liveness_tick):
#   - every node writes and syncs each payload (the log entry, then the
#     job it applies): its turns run past the election timeout (seconds
#     in the sanitizer build) while raft/ sends nothing; its loop sends
#     GR_PEER_ALIVE meanwhile;
#   - the links between the nodes go through the tests' proxy slowed to
#     6 MB/s, so a 32 MiB frame takes about 5.6 s to arrive and the
#     heartbeats behind it on the same link wait as long: bytes of a
#     frame still arriving count as word from its sender.
# Without them the followers call elections (and the leader, finding no
# majority, steps down) over and over.
#
# The election timeout is 2 s (so 2 to 4 s, heartbeats 200 ms) rather
# than the default 300 ms: in the sanitizer build a node's loop thread
# is itself busy for about a second with a 32 MiB frame (copies, its
# CRC), and nothing stands in for a loop that is not running; the turns
# and the transfers are still longer than the longest timeout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRProxy;
use Test::More;
use Digest::MD5 qw(md5_hex);
use Time::HiRes ();

my $MiB = 1 << 20;
my $size = 32 * $MiB;
my $px = GRProxy->new(3);
my @n = start_cluster(3, proxy => $px,
                      args => ['--max-packet-size', 40 * $MiB,
                               '--election-timeout', 2000,
                               '--heartbeat-interval', 200]);

# The leader and term every node names, once all three agree.
sub agreed {
  my %seen;
  for my $s (@n) {
    my $c = eval { $s->cluster } or return undef;
    return undef unless $c->{node}{leader} && $c->{node}{leader} ne '-';
    $seen{"$c->{node}{leader} $c->{node}{term}"}++;
  }
  my @k = keys %seen;
  return @k == 1 ? $k[0] : undef;
}

my $before = wait_until(\&agreed, 30);
ok($before, "the three nodes agree on a leader ($before)")
  or BAIL_OUT('no leader');

$px->rate(6_000_000);
# One budget for the whole round trip (about 40 s in the sanitizer
# build here), inside CTest's limit, so that a job that never gets
# through fails here with a message.
my $deadline = Time::HiRes::time() + 150;
sub left { my $l = $deadline - Time::HiRes::time(); return $l > 0 ? $l : 0.01; }
my $w = $n[1]->conn;
$w->can_do('big');
$w->sync;

my $job = 'j' x $size;
substr($job, $_ * $MiB, 8) = sprintf('%08d', $_) for 0 .. 31;
my $c = $n[0]->conn;
$c->send_pkt(SUBMIT_JOB, 'big', '', $job);
my $p = $c->read_pkt(left());
ok($p && $p->{type} == JOB_CREATED, 'n1 acknowledges the 32 MiB job')
  or BAIL_OUT('no JOB_CREATED: ' . ($p ? $p->{name} : 'timeout'));
my $handle = $p->{data};

$w->send_pkt(GRAB_JOB);
my $a;
do { $a = $w->read_pkt(left()) } while ($a && $a->{type} == NOOP);
ok($a && $a->{type} == JOB_ASSIGN, 'the worker on n2 is handed it')
  or BAIL_OUT('no JOB_ASSIGN: ' . ($a ? $a->{name} : 'timeout'));
is($a->{args}[0], $handle, 'under the handle n1 gave');
is(length($a->{args}[2]), $size, 'with all 32 MiB');
is(md5_hex($a->{args}[2]), md5_hex($job), 'byte for byte');

my $result = reverse $job;
$w->send_pkt(WORK_COMPLETE, $handle, $result);
my $r = $c->read_pkt(left());
ok($r && $r->{type} == WORK_COMPLETE, 'the client on n1 gets WORK_COMPLETE')
  or BAIL_OUT('no WORK_COMPLETE: ' . ($r ? $r->{name} : 'timeout'));
my (undef, $got) = split /\0/, $r->{data}, 2;
is(length($got), $size, 'with the 32 MiB result');
is(md5_hex($got), md5_hex($result), 'byte for byte');

is(agreed(), $before, 'the same leader and term on every node: no election');
$w->close;
$c->close;
done_testing();
