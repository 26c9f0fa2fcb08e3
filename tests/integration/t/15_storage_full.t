# SPDX-License-Identifier: BSD-3-Clause
# A full LMDB map: gearraftd refuses new submissions with ERROR
# QUEUE_ERROR and a clear text, keeps serving everything else (echo,
# status, workers), loses none of the jobs it acknowledged - across a
# SIGKILL too - and accepts submissions again once workers have made
# room. The map is made tiny with the test-only --test-map-size flag, the
# same code path as a full disk. gearmand has no such limit (memory
# only), so the test skips there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

plan(skip_all => 'a full LMDB map is a gearraftd case')
  unless is_gearraftd();

my $MAX = 400;            # submissions tried before giving up
my $PAYLOAD = 32 * 1024;  # 32 KiB: a few hundred fill an 8 MiB map
my $srv = start_server(need_own => 1,
                       args => ['--test-map-size', '8M',
                                '--min-free-space', '1M']);

sub payload { my ($i) = @_; return sprintf('job-%05d:', $i) . ('x' x $PAYLOAD); }

# Fill until refused.
my $c = $srv->conn;
my (%acked, $refusal);
for my $i (1 .. $MAX) {
  $c->send_pkt(SUBMIT_JOB_BG, 'full', '', payload($i));
  my $p = $c->read_pkt(20);
  die 'no answer to a submission' unless $p;
  if ($p->{type} == JOB_CREATED) {
    $acked{ $p->{data} } = $i;
    next;
  }
  $refusal = $p;
  last;
}
ok($refusal, sprintf('refused after %d acknowledged jobs', scalar keys %acked));
is($refusal && $refusal->{type}, ERROR, 'the refusal is an ERROR packet');
is($refusal && $refusal->{args}[0], 'QUEUE_ERROR', 'with code QUEUE_ERROR');
like($refusal && $refusal->{args}[1], qr/full/i, 'and a text that says storage is full');
cmp_ok(scalar keys %acked, '>=', 10, 'the map held a fair number of jobs first');
# Refused by the headroom check, not by a write that found the map full:
# a full map would leave no room for the workers' GRABs and results.
my $log = do { local (@ARGV, $/) = ($srv->{log}); <> } // '';
unlike($log, qr/write batch failed/, 'refused while the map still had room (no write failed)');

# Still serving: the same connection, another one, admin.
$c->sync;
pass('the refused client is still served (echo)');
my $other = $srv->conn;
$other->sync;
pass('another client is served');
is($srv->status->{full}[0], scalar keys %acked, 'status counts exactly the acknowledged jobs');
$c->send_pkt(SUBMIT_JOB_BG, 'full', '', 'one more');
is($c->expect(ERROR)->{args}[0], 'QUEUE_ERROR', 'still refused while full');

# Nothing acknowledged is lost across a crash while full.
$c->close;
$other->close;
$srv->crash_restart;
is($srv->status->{full}[0], scalar keys %acked, 'after SIGKILL: every acknowledged job is queued');

# A worker drains it: every acknowledged job, each once, with its bytes.
my $w = $srv->conn;
$w->can_do('full');
my %seen;
for (1 .. scalar keys %acked) {
  my $a = $w->grab;
  last unless $a->{type} == JOB_ASSIGN;
  my ($h, $f, $data) = @{ $a->{args} };
  my $i = $acked{$h};
  ok(defined $i && !$seen{$h}++ && $data eq payload($i), "job $h: right bytes, once")
    or last;
  $w->send_pkt(WORK_COMPLETE, $h, 'done');
}
is(scalar keys %seen, scalar keys %acked, 'the worker got every acknowledged job');
is($w->grab->{type}, NO_JOB, 'and then nothing more');

# Room again: submissions are accepted (the node rechecks its headroom).
my $again = wait_until(sub { $srv->submit_accepted('full', 'after the drain') }, 20);
ok($again, 'submissions are accepted again once the jobs are done');
done_testing();
