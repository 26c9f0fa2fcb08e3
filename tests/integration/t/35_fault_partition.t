# SPDX-License-Identifier: BSD-3-Clause
# Fault test (issue 16, 7b): a partition with the leader in the minority,
# under load. Three nodes dial each other through a fault proxy the test
# owns (lib/GRProxy.pm); clients reach every node directly, so the cut-off
# leader keeps its clients and workers. --node-gone-timeout 2000.
# Submitters and workers on every node: our raw ones, the gearman CLI as a
# worker and Perl's Gearman::Client. Rounds:
#   1. the leader cut off from both followers for 3 s (past node-gone);
#   2. the leader cut off for 1 s;
#   3. the leader's outgoing links cut for 1.5 s (it hears its peers but
#      they do not hear it).
# Each round waits for the majority to elect a leader and make progress,
# heals, and waits for the old leader to follow and catch up. While cut
# off, the old leader must acknowledge nothing sent to it after the cut
# (it cannot commit). Then the history check (lib/GRLoad.pm).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use GRLoad;
use GRProxy;
use Test::More;
use Time::HiRes ();

plan(skip_all => 'a cluster is gearraftd\'s') unless is_gearraftd();
my $px = GRProxy->new(3);
my @n = start_cluster(3, proxy => $px, args => ['--node-gone-timeout', 2000]);
my $load = GRLoad->new(nodes => \@n, func => 'pt');

$load->submitter(kind => 'raw', home => $_, window => 4, rate => 25) for 0 .. 2;
$load->submitter(kind => 'perl', home => 2, rate => 10);
$load->worker(kind => 'raw', home => $_, hold => 2) for 0 .. 2;
$load->worker(kind => 'cli', home => 0);

ok($load->wait_acked(30, 60), 'the cluster acknowledges submissions')
  or BAIL_OUT('no progress at all');

my @cuts;    # [node, from, to]: nothing sent to node in between may be acked
my @rounds = (['both', 3.0], ['both', 1.0], ['out', 1.5]);
for my $r (1 .. @rounds) {
  my ($how, $secs) = @{ $rounds[$r - 1] };
  my $l = $load->leader;
  ok(defined $l, "round $r: a leader") or last;
  my $name = 'n' . ($l + 1);
  my @others = map { $_ + 1 } grep { $_ != $l } 0 .. 2;
  ok($load->wait_acked(20, 30), "round $r: progress under $name") or last;
  $load->fault_begin($l, 'partition');
  my $t0 = Time::HiRes::time();
  if ($how eq 'both') {
    $px->isolate([$l + 1], \@others);
  } else {
    $px->cut(map { [$l + 1, $_] } @others);
  }
  my $l2 = $load->leader(exclude => [$l]);
  ok(defined $l2, "round $r: $name cut off ($how), "
     . (defined $l2 ? 'n' . ($l2 + 1) : 'nobody') . ' leads the majority') or last;
  ok($load->wait_acked(20, 30), "round $r: progress in the majority") or last;
  # The cut lasts $secs: the partition's length is the parameter tested.
  my $left = $t0 + $secs - Time::HiRes::time();
  select(undef, undef, undef, $left) if $left > 0;
  my $t1 = Time::HiRes::time();
  $px->heal;
  push @cuts, [$l, $t0, $t1] if $how eq 'both';
  ok($load->caught_up($l), "round $r: healed after ${secs} s, $name follows and catches up");
  $load->fault_end($l);
}
$load->finish;
my $h = $load->check('leader partitioned', kinds => [qw(cli perl)]);

# A submission sent to a node cut off from the majority cannot commit
# until the partition heals, so it cannot be acknowledged before then.
my @early;
for my $key (keys %{ $h->{acked} }) {
  my $a = $h->{acked}{$key};
  my $s = $h->{sent}{"$key:$a->{attempt}"} or next;
  for my $c (@cuts) {
    push @early, "$key (sent to n" . ($c->[0] + 1) . " at $s->{t}, acknowledged at $a->{t})"
      if $s->{node} == $c->[0] && $a->{node} == $c->[0]
      && $s->{t} > $c->[1] && $a->{t} < $c->[2];
  }
}
is(scalar @early, 0, 'the cut-off leader acknowledged nothing sent to it during the cut')
  or diag(join('; ', (sort @early)[0 .. ($#early < 4 ? $#early : 4)]));
done_testing();
