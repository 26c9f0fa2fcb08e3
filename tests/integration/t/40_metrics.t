# SPDX-License-Identifier: BSD-3-Clause
# The operators' HTTP endpoint (--http-listen; README.md, "Metrics and
# health"): GET /metrics shows the queue per function and priority,
# running jobs, workers, applied submissions and completions, the Raft
# state and the commit and sync latency histograms in the Prometheus
# text format; GET
# /health answers 200 while the node serves and knows a leader, 503 with
# the reason when it knows none. On three nodes every node shows the job
# submitted through one of them, exactly one says it leads, the leader
# sees a killed follower's links go down, and the node left alone when
# two are killed turns unhealthy. gearraftd only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use HTTP::Tiny;
use Test::More;

plan(skip_all => 'the HTTP endpoint is gearraftd\'s') unless is_gearraftd();

my $http = HTTP::Tiny->new(timeout => 10);

sub get {
  my ($port, $path, %o) = @_;
  return $http->request($o{method} // 'GET', "http://127.0.0.1:$port$path");
}

# The samples of one scrape: "name{labels}" => value.
sub scrape {
  my ($port) = @_;
  my $r = get($port, '/metrics');
  return undef unless $r->{status} == 200;
  my %m;
  for (split /\n/, $r->{content}) {
    next if /\A#/;
    my ($k, $v) = /\A(\S+(?:\{.*\})?) (\S+)\z/ or return undef;
    $m{$k} = $v;
  }
  return \%m;
}

# --- one node ---------------------------------------------------------
my $hp = GRTest::free_port();
my $s = start_server(args => ['--http-listen', "127.0.0.1:$hp"]);
my $fn = 'me"tr\\ic';                       # a quote and a backslash
my $lab = 'me\\"tr\\\\ic';                   # ... as a label escapes them

my $h = get($hp, '/health');
is($h->{status}, 200, 'one node: /health 200');
is($h->{content}, "ok\n", 'one node: /health says ok');
like($h->{headers}{'content-type'}, qr{\Atext/plain}, 'health is plain text');

my $c = $s->conn;
for my $t (SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_BG, SUBMIT_JOB_BG, SUBMIT_JOB_LOW_BG) {
  $c->send_pkt($t, $fn, '', 'p');
  $c->expect(JOB_CREATED);
}
my $m = scrape($hp);
ok($m, '/metrics parses as name value lines');
is($m->{qq(gearraft_jobs_queued{function="$lab",priority="high"})}, 1, 'one high queued');
is($m->{qq(gearraft_jobs_queued{function="$lab",priority="normal"})}, 2, 'two normal queued');
is($m->{qq(gearraft_jobs_queued{function="$lab",priority="low"})}, 1, 'one low queued');
is($m->{qq(gearraft_jobs_running{function="$lab"})}, 0, 'none running');
is($m->{gearraft_submits_applied_total}, 4, 'four submissions applied');
is($m->{'gearraft_raft_role{role="leader"}'}, 1, 'a lone node leads');

my $w = $s->conn;
$w->can_do($fn);
my $job = $w->grab;
is($job->{type}, JOB_ASSIGN, 'a worker gets one');
# A lone node may hand a job out before the GRAB is on disk: the scrape
# shows the queue as applied, a moment later.
$m = wait_until(sub {
  my $x = scrape($hp);
  return $x && $x->{qq(gearraft_jobs_running{function="$lab"})} ? $x : undef;
});
is($m->{qq(gearraft_jobs_running{function="$lab"})}, 1, 'one running');
is($m->{qq(gearraft_workers{function="$lab"})}, 1, 'one worker for it here');
is($m->{qq(gearraft_jobs_queued{function="$lab",priority="high"})}, 0,
   'the high one was handed out first');
$w->send_pkt(WORK_COMPLETE, $job->{args}[0], 'done');
$w->sync;
$m = wait_until(sub {
  my $x = scrape($hp);
  return $x && $x->{gearraft_completions_applied_total} ? $x : undef;
});
is($m->{gearraft_completions_applied_total}, 1, 'one completion applied');
is($m->{qq(gearraft_jobs_running{function="$lab"})}, 0, 'none running again');

# Histograms: cumulative buckets, +Inf equal to the count, some batches.
for my $hn (qw(commit_seconds fsync_seconds)) {
  my @b = map { $m->{$_} } sort { _le($a) <=> _le($b) }
          grep { /\Agearraft_${hn}_bucket\{/ } keys %$m;
  ok(@b >= 10, "$hn: its buckets");
  ok(!grep({ $b[$_] < $b[$_ - 1] } 1 .. $#b), "$hn: buckets are cumulative");
  is($b[-1], $m->{"gearraft_${hn}_count"}, "$hn: +Inf holds the count");
}
cmp_ok($m->{gearraft_commit_seconds_count}, '>=', 3, 'batches were timed');
sub _le { my ($k) = @_; my ($v) = $k =~ /le="([^"]+)"/; $v eq '+Inf' ? 9e99 : $v }

is(get($hp, '/nothing')->{status}, 404, 'another path: 404');
is(get($hp, '/metrics', method => 'POST')->{status}, 405, 'POST: 405');
is(get($hp, '/health', method => 'HEAD')->{status}, 200, 'HEAD /health: 200');
$c->close;
$w->close;

# --- three nodes ------------------------------------------------------
my @hp = map { GRTest::free_port() } 1 .. 3;
my @n = start_cluster(3, node_args => sub { ('--http-listen', "127.0.0.1:$hp[$_[0] - 1]") });

ok(wait_until(sub { !grep { get($_, '/health')->{status} != 200 } @hp }, 30),
   'every node healthy once a leader is known');
{
  my $cc = $n[1]->conn;
  $cc->send_pkt(SUBMIT_JOB_BG, 'clustered', '', 'x');
  $cc->expect(JOB_CREATED, 30);
  $cc->close;
}
my $all = wait_until(sub {
  my @m = map { scrape($_) } @hp;
  return undef if grep { !$_ } @m;
  return undef if grep { ($_->{'gearraft_jobs_queued{function="clustered",priority="normal"}'} // 0) != 1 } @m;
  return \@m;
}, 30);
ok($all, 'the job submitted through node 2 is queued on every node');
my @leaders = grep { $all->[$_]{'gearraft_raft_role{role="leader"}'} } 0 .. 2;
is(scalar(@leaders), 1, 'exactly one node says it leads');
my $l = $leaders[0] // 0;
my @f = grep { $_ != $l } 0 .. 2;
for my $k (0 .. 2) {
  is($all->[$k]{gearraft_raft_leader_known}, 1, "$n[$k]{name}: knows the leader");
}
ok(wait_until(sub {
  my $lm = scrape($hp[$l]);
  return $lm && !grep { ($lm->{qq(gearraft_peer_up{peer="$n[$_]{name}"})} // 0) != 1 } @f;
}, 30), 'the leader sees both followers\' links up');

$n[$f[0]]->kill('KILL');
ok(wait_until(sub {
  my $lm = scrape($hp[$l]);
  return $lm && ($lm->{qq(gearraft_peer_up{peer="$n[$f[0]]{name}"})} // 1) == 0;
}, 30), 'a killed follower\'s links go down in the leader\'s metrics');

$n[$l]->kill('KILL');
my $why;
ok(wait_until(sub {
  my $r = get($hp[$f[1]], '/health');
  $why = $r->{content};
  return $r->{status} == 503;
}, 30), 'the node left alone turns unhealthy');
is($why, "no leader known\n", '... and says why');

done_testing();
