# SPDX-License-Identifier: BSD-3-Clause
# Fault test (issue 16, 7b): a node stopped with SIGSTOP past the election
# timeout, then let go with SIGCONT, under load. Three nodes with
# --node-gone-timeout 2000; submitters and workers on every node, our raw
# ones and PHP's gearman extension (php/fault_*.php). Rounds:
#   1. the leader stopped for 1 s (past the election timeout, short of
#      node-gone): the others elect a leader and go on; it comes back as
#      a follower;
#   2. a follower stopped for 3 s: the leader declares it gone, its
#      workers' jobs go back to the queue; let go, it closes its Gearman
#      connections and serves again under a new incarnation;
#   3. the leader stopped for 3 s (past node-gone);
#   4. a follower stopped for 0.6 s.
# Each round waits for progress without the stopped node and for it to
# catch up after. Then the history check (lib/GRLoad.pm): zero
# acknowledged jobs lost; a job handed out twice only after its worker's
# node was stopped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRLoad;
use Test::More;
use Time::HiRes ();

my @n = start_cluster(3, args => ['--node-gone-timeout', 2000]);
my $load = GRLoad->new(nodes => \@n, func => 'st');

$load->submitter(kind => 'raw', home => $_, window => 4, rate => 40) for 0 .. 2;
$load->submitter(kind => 'php', home => 1, rate => 10);
$load->worker(kind => 'raw', home => $_, hold => 2) for 0 .. 2;
$load->worker(kind => 'php', home => 2);

ok($load->wait_acked(30, 60), 'the cluster acknowledges submissions')
  or BAIL_OUT('no progress at all');

my @rounds = (['leader', 1.0], ['follower', 3.0], ['leader', 3.0], ['follower', 0.6]);
for my $r (1 .. @rounds) {
  my ($who, $secs) = @{ $rounds[$r - 1] };
  my $l = $load->leader;
  ok(defined $l, "round $r: a leader") or last;
  my $k = $who eq 'leader' ? $l : ($l + 1 + $r % 2) % 3;
  my $name = "n" . ($k + 1);
  ok($load->wait_acked(20, 30), "round $r: progress before $name ($who) is stopped") or last;
  my $t0 = Time::HiRes::time();
  $load->stop_node($k);
  if ($who eq 'leader') {
    my $l2 = $load->leader(exclude => [$k]);
    ok(defined $l2, "round $r: $name stopped, "
       . (defined $l2 ? 'n' . ($l2 + 1) : 'nobody') . ' leads') or last;
  }
  ok($load->wait_acked(20, 30), "round $r: progress while $name is stopped") or last;
  # The fault lasts $secs: what is tested is the cluster with a node
  # silent that long, so the time itself is the parameter.
  my $left = $t0 + $secs - Time::HiRes::time();
  select(undef, undef, undef, $left) if $left > 0;
  ok($load->cont($k), "round $r: $name let go after ${secs} s, follows and catches up");
}
$load->finish;
$load->check('node stopped', kinds => [qw(php)]);
done_testing();
