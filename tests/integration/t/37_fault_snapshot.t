# SPDX-License-Identifier: BSD-3-Clause
# Fault test (issue 16, 7b): a follower kept down until it needs a
# snapshot. Three nodes with --snapshot-every 100 (a member keeps 50
# entries behind its latest snapshot). Under load, a follower is killed;
# it stays down until both other nodes hold a snapshot more than 1,200
# entries past the last entry it had, so neither their logs (compacted
# to 50 entries behind a snapshot) nor raft/'s window of 1,024 entries in
# memory reach back to it, and the leader must send it a snapshot: its
# log says it installed one. Restarted, it must catch up; then a Perl
# Gearman::Worker runs on it, and the leader is killed,
# so the node restored from the snapshot is half of the majority that
# goes on. The submitters are our raw ones and the gearman CLI. Then the
# history check (lib/GRLoad.pm): zero acknowledged jobs lost.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRLoad;
use Test::More;

my @n = start_cluster(3, args => ['--snapshot-every', 100, '--verbose', 'NOTICE']);
my $load = GRLoad->new(nodes => \@n, func => 'sn');

$load->submitter(kind => 'raw', home => $_, window => 4, rate => 40) for 0 .. 2;
$load->submitter(kind => 'cli', home => 0, rate => 5);

ok($load->wait_acked(30, 60), 'the cluster acknowledges submissions')
  or BAIL_OUT('no progress at all');
my $l = $load->leader;
ok(defined $l, 'a leader') or BAIL_OUT('no leader');
my $f = ($l + 1) % 3;
my @rest = grep { $_ != $f } 0 .. 2;
$load->worker(kind => 'raw', home => $_, hold => 2) for @rest;

# The newest snapshot index in node $k's data directory (0: none).
sub snap_index {
  my ($k) = @_;
  my ($max) = sort { $b <=> $a } map { /snap-(\d+)-\d+\z/ ? $1 : () }
    glob($n[$k]->datadir . '/snapshots/snap-*');
  return $max // 0;
}

my $v = $n[$f]->cluster;
my $last = $v->{node}{last};
$load->kill_node($f);
pass("n" . ($f + 1) . " (a follower) killed with its log at $last");
ok(wait_until(sub { !grep { snap_index($_) <= $last + 1200 } @rest }, 120),
   'the other two took a snapshot more than 1,200 entries past it: '
   . join(', ', map { 'n' . ($_ + 1) . ' at ' . snap_index($_) } @rest))
  or BAIL_OUT('no snapshot');
$load->restart($f);
ok($load->caught_up($f, timeout => 60), "n" . ($f + 1) . " restarted, follows and catches up");
{
  my $log = do { local (@ARGV, $/) = ($n[$f]{log}); <> } // '';
  like($log, qr/installed the leader's snapshot at \d+/, "n" . ($f + 1) . " caught up by a snapshot");
}
$load->worker(kind => 'perl', home => $f);
$load->worker(kind => 'raw', home => $f, hold => 2);
ok($load->wait_acked(20, 30), 'progress with it');
$l = $load->leader;
ok(defined $l, 'a leader') or BAIL_OUT('no leader');
if ($l == $f) {
  # Kill the other one: the restored node must be half of the majority.
  $l = ($f + 1) % 3;
}
$load->kill_node($l);
ok(defined $load->leader(exclude => [$l]), 'n' . ($l + 1) . ' killed: the two left elect a leader');
ok($load->wait_acked(30, 30), 'progress with the node restored from the snapshot in the majority');
$load->restart($l);
$load->finish;
$load->check('follower behind a snapshot', kinds => [qw(cli perl)]);
done_testing();
