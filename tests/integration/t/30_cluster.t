# SPDX-License-Identifier: BSD-3-Clause
# Three gearraftd nodes on loopback, one cluster: every node acknowledges
# submissions, a worker on any node gets jobs submitted on any other, a
# foreground client gets its worker's packets across nodes, a sleeping
# worker is woken by a job submitted elsewhere; the cluster goes on
# without a node killed with SIGKILL, and that node comes back from its
# disk and serves again. Every acknowledged job is handed out exactly once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my @n = start_cluster(3);
my %acked;     # handle => payload, every JOB_CREATED a client got
my %handed;    # handle => times a worker was handed it

# A background submission through node $k (0-based), answered once a leader has
# committed it (the first ones wait for the election).
sub submit_bg {
  my ($k, $fn, $payload) = @_;
  my $c = $n[$k]->conn;
  $c->send_pkt(SUBMIT_JOB_BG, $fn, '', $payload);
  my $p = $c->expect(JOB_CREATED, 30);
  $c->close;
  $acked{$p->{data}} = $payload;
  return $p->{data};
}

# Grabs on node $k (0-based) until NO_JOB, completing each job; returns the
# payloads handed out.
sub drain {
  my ($k, $fn) = @_;
  my $w = $n[$k]->conn;
  my @got;
  $w->can_do($fn);
  while (1) {
    my $a = $w->grab;
    last if $a->{type} == NO_JOB;
    is($a->{type}, JOB_ASSIGN, "$n[$k]{name}: JOB_ASSIGN") or last;
    my ($h, $f, $d) = @{ $a->{args} };
    $handed{$h}++;
    push @got, $d;
    $w->send_pkt(WORK_COMPLETE, $h, '');
  }
  $w->sync;
  $w->close;
  return @got;
}

# --- every node acknowledges, any node's worker runs any node's jobs -------
my @h = map { submit_bg($_, 'everywhere', "from-node-$_") } 0 .. 2;
is(scalar(keys %{ { map { $_ => 1 } @h } }), 3, 'three distinct handles');
like($_, qr/\AH:gearraft:\d+\z/, "handle $_ names the cluster") for @h;
is_deeply([sort(drain(2, 'everywhere'))],
          [map { "from-node-$_" } 0 .. 2],
          'a worker on node 3 gets the jobs submitted on all three nodes');

# --- reads on any node see every acknowledged job (linearizable) -----------
{
  my @q = map { $n[$_]->conn } 0 .. 2;
  for my $round (1 .. 20) {
    my $k = $round % 3;
    my $h = submit_bg($k, 'seen', "seen-$round");
    for my $j (grep { $_ != $k } 0 .. 2) {
      $q[$j]->send_pkt(GET_STATUS, $h);
      my @st = split /\0/, $q[$j]->expect(STATUS_RES, 10)->{data};
      is($st[1], 1, "round $round: GET_STATUS on $n[$j]{name} knows the job acknowledged on $n[$k]{name}")
        or last;
    }
    is($n[($k + 1) % 3]->status->{seen}[0], $round,
       "round $round: admin status on another node counts it");
  }
  $_->close for @q;
  is(scalar(drain(1, 'seen')), 20, 'the twenty jobs run');
}

# --- foreground across nodes ----------------------------------------------
{
  my $w = $n[1]->conn;
  $w->can_do('fg');
  $w->sync;
  my $c = $n[0]->conn;
  $c->send_pkt(SUBMIT_JOB, 'fg', '', 'question');
  my $h = $c->expect(JOB_CREATED, 30)->{data};
  $acked{$h} = 'question';
  my $a = wait_until(sub { my $g = $w->grab; $g->{type} == JOB_ASSIGN ? $g : undef }, 10);
  ok($a, 'the worker on node 2 gets the job submitted on node 1');
  $handed{$h}++ if $a;
  $w->send_pkt(WORK_STATUS, $h, 1, 2);
  $w->send_pkt(WORK_DATA, $h, 'part');
  $w->send_pkt(WORK_COMPLETE, $h, 'answer');
  my $p = $c->expect(WORK_STATUS, 10);
  is($p->{data}, "$h\0" . "1\0" . "2", 'the client on node 1 gets WORK_STATUS');
  is($c->expect(WORK_DATA, 10)->{data}, "$h\0part", '... WORK_DATA');
  is($c->expect(WORK_COMPLETE, 10)->{data}, "$h\0answer", '... and WORK_COMPLETE');
  $_->close for $w, $c;
}

# --- a sleeping worker on one node, a job submitted on another -------------
{
  my $w = $n[2]->conn;
  $w->can_do('wake');
  is($w->grab->{type}, NO_JOB, 'nothing queued for wake');
  $w->send_pkt(PRE_SLEEP);
  $w->sync;
  submit_bg(0, 'wake', 'w1');
  is($w->expect(NOOP, 10)->{type}, NOOP, 'the sleeper on node 3 is woken by a job submitted on node 1');
  my $a = $w->grab;
  is($a->{type}, JOB_ASSIGN, 'and gets it');
  $handed{ $a->{args}[0] }++;
  $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
  $w->sync;
  $w->close;
}

# --- a node killed; the others go on; it comes back -------------------------
$n[0]->kill('KILL');
my @more = map { submit_bg($_, 'after', "after-$_") } 1, 2;
is_deeply([sort(drain(1, 'after'))], ['after-1', 'after-2'],
          'with node 1 killed, nodes 2 and 3 acknowledge and hand out jobs');
$n[0]->start_again;
submit_bg(0, 'back', 'back-0');
is_deeply([drain(0, 'back')], ['back-0'], 'node 1 restarted from its disk serves again');

is_deeply([grep { $handed{$_} != 1 } keys %acked], [],
          'every acknowledged job was handed out exactly once');
is_deeply([grep { !$acked{$_} } keys %handed], [], 'no job handed out that was not acknowledged');
done_testing();
