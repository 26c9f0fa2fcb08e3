# SPDX-License-Identifier: BSD-3-Clause
# Fault test (issue 16, 7b): the leader killed with SIGKILL under load,
# again and again. Three nodes; submitters and workers on every node, our
# raw ones and real clients (Perl's Gearman::Client and Gearman::Worker,
# the gearman CLI). Each round waits for a leader and for progress under
# it, kills it, waits for the other two to elect a new one and to make
# progress without it, and starts the killed node again on its disk. Then
# the load stops, the queue drains, and the history check runs
# (lib/GRLoad.pm): zero acknowledged jobs lost.
#
# GR_FAULT_ROUNDS sets the number of kills (default 10).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRLoad;
use Test::More;

my $ROUNDS = $ENV{GR_FAULT_ROUNDS} || 10;
my @n = start_cluster(3);
my $load = GRLoad->new(nodes => \@n, func => 'lk');

$load->submitter(kind => 'raw', home => $_, window => 4, rate => 40) for 0 .. 2;
$load->submitter(kind => 'perl', home => 1, rate => 10);
$load->submitter(kind => 'cli', home => 2, rate => 5);
$load->worker(kind => 'raw', home => $_, hold => 2) for 0 .. 2;
$load->worker(kind => 'perl', home => 0);

ok($load->wait_acked(30, 60), 'the cluster acknowledges submissions')
  or BAIL_OUT('no progress at all');
for my $r (1 .. $ROUNDS) {
  my $l = $load->leader;
  ok(defined $l, "round $r: a leader") or last;
  ok($load->wait_acked(20, 30), "round $r: progress under n" . ($l + 1)) or last;
  $load->kill_node($l);
  my $l2 = $load->leader(exclude => [$l]);
  ok(defined $l2, "round $r: n" . ($l + 1) . ' killed, '
     . (defined $l2 ? 'n' . ($l2 + 1) : 'nobody') . ' leads') or last;
  ok($load->wait_acked(20, 30), "round $r: progress without the killed node") or last;
  $load->restart($l);
}
$load->finish;
$load->check('leader killed', kinds => [qw(perl cli)]);
done_testing();
