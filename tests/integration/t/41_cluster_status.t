# SPDX-License-Identifier: BSD-3-Clause
# `status` on a cluster counts every node's workers (docs/DESIGN.md, "The
# cluster": each member tells the others its workers about once a
# second): a worker on node 3 and two on node 2 show as three available
# workers in `status` and `prioritystatus` on node 1, and in what the
# real `gearadmin --status` prints there; workers that leave stop
# counting, and so do the workers of a node killed with SIGKILL. The
# `workers` line stays this node's own connections. gearraftd only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my @n = start_cluster(3);

# The function exists everywhere once a submission is acknowledged.
{
  my $c = $n[0]->conn;
  $c->send_pkt(SUBMIT_JOB_BG, 'summed', '', 'x');
  $c->expect(JOB_CREATED, 30);
  $c->close;
}

my @w;
for my $k (1, 1, 2) {
  my $w = $n[$k]->conn;
  $w->can_do('summed');
  $w->sync;
  push @w, $w;
}

sub workers_on {
  my ($k) = @_;
  my $st = $n[$k]->status->{summed};
  return $st ? $st->[2] : -1;
}

ok(wait_until(sub { workers_on(0) == 3 }, 10),
   'node 1 counts the three workers of nodes 2 and 3')
  or diag('node 1 says ' . workers_on(0));
is(workers_on(1), 3, 'so does node 2 (two of its own, one told)');
is($n[0]->prioritystatus->{summed}[3], 3, 'prioritystatus counts them too');
{
  my $h = $n[0]->host;
  my $p = $n[0]->port;
  my $out = `gearadmin -h $h -p $p --status 2>&1`;
  like($out, qr/^summed\t1\t0\t3$/m, 'gearadmin --status on node 1 prints 3 workers');
}
unlike($n[0]->admin('workers'), qr/summed/,
       '`workers` lists only node 1\'s own connections');

$_->close for @w[0, 1];
ok(wait_until(sub { workers_on(0) == 1 }, 10),
   'the two workers of node 2 leave: node 1 counts one');

$n[2]->kill('KILL');
ok(wait_until(sub { workers_on(0) == 0 }, 10),
   'node 3 killed: its worker counts no more');

done_testing();
