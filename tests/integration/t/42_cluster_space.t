# SPDX-License-Identifier: BSD-3-Clause
# Storage headroom across the cluster (docs/DESIGN.md, "Workers on every
# node"): one member has a small map (test-only --test-map-size). Jobs
# submitted through another node fill it; before it runs out, every node
# refuses new submissions with ERROR QUEUE_ERROR saying a cluster member
# is out of storage space, the small node keeps running and applying
# (it never meets an entry it cannot store), every acknowledged job is
# queued on every node, and once a worker drains them submissions are
# accepted again. gearraftd only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $PAYLOAD = 16 * 1024;
my $MAX = 800;
my @n = start_cluster(3, node_args => sub {
  $_[0] == 3 ? ('--test-map-size', '8M', '--min-free-space', '1M') : () });

sub payload { my ($i) = @_; return sprintf('job-%05d:', $i) . ('x' x $PAYLOAD); }

my $c = $n[0]->conn;
my (%acked, $refusal);
for my $i (1 .. $MAX) {
  $c->send_pkt(SUBMIT_JOB_BG, 'spacious', '', payload($i));
  my $p = $c->read_pkt(30);
  die 'no answer to a submission' unless $p;
  if ($p->{type} == JOB_CREATED) {
    $acked{ $p->{data} } = $i;
    next;
  }
  $refusal = $p;
  last;
}
ok($refusal, sprintf('node 1 refused after %d acknowledged jobs', scalar keys %acked));
is($refusal && $refusal->{args}[0], 'QUEUE_ERROR', 'with QUEUE_ERROR');
like($refusal && $refusal->{args}[1], qr/cluster member is out of storage space/,
     'saying a cluster member is out of space');
cmp_ok(scalar keys %acked, '>=', 10, 'the small map held a fair number first');

# Node 2 refuses too (it heard the same), node 3 refuses its own.
for my $k (1, 2) {
  my $x = $n[$k]->conn;
  $x->send_pkt(SUBMIT_JOB_BG, 'spacious', '', 'one more');
  is($x->expect(ERROR, 10)->{args}[0], 'QUEUE_ERROR', "$n[$k]{name} refuses too");
  $x->close;
}

# The small node never failed a write: it is alive and has every job.
ok($n[2]->alive, 'node 3 is still running');
my $log = do { local (@ARGV, $/) = ($n[2]{log}); <> } // '';
unlike($log, qr/write batch failed|cannot apply|stopping now/,
       'node 3 never failed to store an entry');
for my $k (0 .. 2) {
  my $st = wait_until(sub {
    my $s = $n[$k]->status->{spacious};
    return $s && $s->[0] == keys %acked ? $s : undef;
  }, 20);
  ok($st, "$n[$k]{name}: every acknowledged job is queued");
}

# A worker on node 2 drains them: room again, submissions accepted.
my $w = $n[1]->conn;
$w->can_do('spacious');
my %seen;
while (1) {
  my $a = $w->grab;
  last unless $a->{type} == JOB_ASSIGN;
  my ($h, undef, $data) = @{ $a->{args} };
  $seen{$h}++ if defined $acked{$h} && $data eq payload($acked{$h});
  $w->send_pkt(WORK_COMPLETE, $h, '');
}
is(scalar keys %seen, scalar keys %acked, 'the worker got every acknowledged job, bytes intact');
my $again = wait_until(sub {
  $c->send_pkt(SUBMIT_JOB_BG, 'spacious', '', 'after');
  my $p = $c->read_pkt(10);
  return $p && $p->{type} == JOB_CREATED;
}, 30);
ok($again, 'submissions are accepted again once node 3 has room');

done_testing();
