# SPDX-License-Identifier: BSD-3-Clause
# A node that stops answering (SIGSTOP) past --node-gone-timeout is
# declared gone by the leader: the job its worker held goes back to the
# queue and a worker on another node runs it. When the node is let go
# (SIGCONT) it learns it was declared gone, closes its Gearman
# connections and serves again under a new incarnation.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

# The node-gone timeout is short, for a quick test, but not so short that
# a healthy node starved of CPU for a moment (a loaded CI machine, a
# sanitizer build) is declared gone too: that closes its connections,
# the client's here among them.
my @n = start_cluster(3, args => ['--election-timeout', 300,
                                  '--heartbeat-interval', 50,
                                  '--node-gone-timeout', 2500]);

my $c = $n[0]->conn;
$c->send_pkt(SUBMIT_JOB_BG, 'held', '', 'the job');
my $h = $c->expect(JOB_CREATED, 30)->{data};

# A worker on n3 takes the job and hangs on to it.
my $w3 = $n[2]->conn;
$w3->can_do('held');
my $a = $w3->grab;
is($a->{type}, JOB_ASSIGN, 'the worker on n3 holds the job') or diag("got $a->{name}: " . join(',', @{ $a->{args} || [] }));
is($a->{args}[0], $h, '... this one');

# n3 stops answering; a worker on n2 waits for work.
$n[2]->kill('STOP');
my $w2 = $n[1]->conn;
$w2->can_do('held');
my $again = wait_until(sub {
  my $g = $w2->grab;
  return $g->{type} == JOB_ASSIGN ? $g : undef;
}, 30);
ok($again, 'after the node-gone timeout a worker on n2 gets the job');
is($again && $again->{args}[0], $h, 'the same job, same handle');
$w2->send_pkt(WORK_COMPLETE, $h, 'done');
$w2->sync;
my $st = $n[0]->status->{held};
is_deeply([@$st[0, 1]], [0, 0], 'status on n1: nothing queued or running');

# n3 comes back: it learns it was declared gone and closes its
# connections; then it serves again.
$n[2]->kill('CONT');
ok($w3->closed(30), 'n3 closed the connection of its worker that was declared gone');
my $w3b = $n[2]->conn;
$w3b->can_do('held');
$w3b->sync;
$c->send_pkt(SUBMIT_JOB_BG, 'held', '', 'after');
my $h2 = $c->expect(JOB_CREATED, 30)->{data};
my $b = wait_until(sub { my $g = $w3b->grab; $g->{type} == JOB_ASSIGN ? $g : undef }, 30);
is($b && $b->{args}[0], $h2, 'a new worker on n3 gets work from the cluster again');
done_testing();
