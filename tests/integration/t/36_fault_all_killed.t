# SPDX-License-Identifier: BSD-3-Clause
# Fault test (issue 16, 7b): every node killed at once with SIGKILL under
# load, then started again on its disk, three times (all three together;
# two first and the third once they lead; one first, then the other two).
# Submitters and workers on every node: our raw ones, PHP's gearman
# extension and the gearman CLI as submitters, PHP as a worker. Each round
# waits for progress, kills all, restarts, and waits for a leader and
# progress again. Then the history check (lib/GRLoad.pm): every job a
# client saw acknowledged survives the loss of every process.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRLoad;
use Test::More;

my @n = start_cluster(3);
my $load = GRLoad->new(nodes => \@n, func => 'ak');

$load->submitter(kind => 'raw', home => $_, window => 4, rate => 25) for 0 .. 2;
$load->submitter(kind => 'php', home => 0, rate => 10);
$load->submitter(kind => 'cli', home => 1, rate => 5);
$load->worker(kind => 'raw', home => $_, hold => 2) for 0 .. 2;
$load->worker(kind => 'php', home => 1);

ok($load->wait_acked(30, 60), 'the cluster acknowledges submissions')
  or BAIL_OUT('no progress at all');
my @orders = ([[0, 1, 2]], [[1, 2], [0]], [[2], [0, 1]]);
for my $r (1 .. @orders) {
  ok($load->wait_acked(30, 30), "round $r: progress") or last;
  $load->fault_begin($_, 'kill') for 0 .. 2;
  $_->kill('KILL') for @n;
  pass("round $r: every node killed");
  for my $group (@{ $orders[$r - 1] }) {
    $load->restart($_) for @$group;
    # One node alone cannot elect; two can: wait for them before the next.
    if (@$group >= 2) {
      ok(defined $load->leader, "round $r: n" . join(', n', map { $_ + 1 } @$group)
         . ' restarted, a leader') or last;
    }
  }
  ok(defined $load->leader, "round $r: every node restarted, a leader");
  ok($load->wait_acked(30, 30), "round $r: progress after the restart") or last;
}
$load->finish;
$load->check('every node killed', kinds => [qw(php cli)]);
done_testing();
