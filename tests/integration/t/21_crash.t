# SPDX-License-Identifier: BSD-3-Clause
# The crash test (issue 3, point 6): several clients flood pipelined
# background submissions with distinct payloads; the server is SIGKILLed
# mid-flood and restarted on the same data dir; workers then drain the
# queue. Every payload a client saw acknowledged (JOB_CREATED received)
# must run exactly once; anything that runs must have been sent; a sent
# but unacknowledged payload may run at most once.
#
# Against gearmand (memory only) the same flood and drain run without the
# kill, as a check of the harness and the counting; the kill is skipped.
#
# With GR_POWERCUT_LIB (the power-cut variant, gearraftd only) the server
# runs with that LD_PRELOAD library, which keeps the image of the data
# file as of its last completed sync (tests/integration/powercut.c); after
# each kill that image replaces data.mdb, as if the machine had lost
# power, so an acknowledgment sent before its batch was on disk shows up
# as a missing job.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use POSIX ();
use Time::HiRes ();

my $CLIENTS = 4;
my $WINDOW = 32;                           # pipelined submissions in flight
my $PER_CLIENT = $ENV{GR_CRASH_PER_CLIENT} || (is_gearraftd() ? 25000 : 5000);
my $KILL_AT = $ENV{GR_CRASH_KILL_AT} || 2000;    # acknowledged, in total
my $FLOOD_SECS = 60;

my $crash = is_gearraftd() || server_kind() eq 'gearmand-sqlite';
my $powercut = $ENV{GR_POWERCUT_LIB};
plan(skip_all => 'the power-cut variant preloads into gearraftd only')
  if $powercut && !is_gearraftd();
# A slow disk (2 ms more per sync) widens the window between a commit and
# its durability, where an early acknowledgment would be caught.
my $srv = start_server(need_own => 1,
                       env => powercut_env(GR_POWERCUT_SLOW_SYNC_US => 2000));
my $dir = $srv->dir;
my $func = 'crashf';

# One flooding client of round R: writes each payload to sent.R.<i> before
# sending it and to acked.R.<i> when its JOB_CREATED arrives (JOB_CREATED
# comes back in submission order on a connection). Stops at EOF or after
# $PER_CLIENT submissions.
sub flood {
  my ($r, $i) = @_;
  $SIG{PIPE} = 'IGNORE';
  open my $sent, '>', "$dir/sent.$r.$i" or die;
  open my $acked, '>', "$dir/acked.$r.$i" or die;
  $sent->autoflush(1);
  $acked->autoflush(1);
  my $c = eval { $srv->conn } or POSIX::_exit(0);
  my @pending;
  my $next = 0;
  my $end = Time::HiRes::time() + $FLOOD_SECS;
  while (Time::HiRes::time() < $end) {
    my $batch = '';
    my @new;
    while (@pending + @new < $WINDOW && $next < $PER_CLIENT) {
      my $p = sprintf('r%d-c%d-%06d', $r, $i, $next++);
      push @new, $p;
      $batch .= GRTest::Conn::encode(SUBMIT_JOB_BG, $func, '', $p);
    }
    if (@new) {
      print $sent "$_\n" for @new;
      last unless eval { $c->send_raw($batch); 1 };
      push @pending, @new;
    }
    last unless @pending;
    my $pkt = $c->read_pkt(20);
    last if !$pkt || $pkt->{eof};
    my $p = shift @pending;    # JOB_CREATED or ERROR answers the oldest
    print $acked "$p\n" if $pkt->{type} == JOB_CREATED;
  }
  close $sent;
  close $acked;
  POSIX::_exit(0);
}

sub count_lines {
  my ($pat) = @_;
  my $n = 0;
  for my $f (glob "$dir/$pat") {
    open my $fh, '<', $f or next;
    $n++ while <$fh>;
  }
  return $n;
}

# Round 1 floods an empty server; round 2 floods the restarted one (the
# recovered queue still undrained) and kills it again.
my $ROUNDS = $crash ? 2 : 1;
my (%sent, %acked);
for my $r (1 .. $ROUNDS) {
  my @kids;
  for my $i (1 .. $CLIENTS) {
    my $pid = fork() // die;
    flood($r, $i) if $pid == 0;
    push @kids, $pid;
  }
  if ($crash) {
    # Poll the clients' ack files often so the kill lands mid-flood.
    my $end = Time::HiRes::time() + deadline_secs(60);
    my $n = 0;
    while (($n = count_lines("acked.$r.*")) < $KILL_AT && Time::HiRes::time() < $end) {
      select(undef, undef, undef, 0.01);
    }
    ok($n >= $KILL_AT, "round $r: at least $KILL_AT submissions acknowledged before the kill ($n)");
    $srv->kill('KILL');
    pass("round $r: server SIGKILLed mid-flood");
    if ($powercut) {
      ok($srv->cut_power,
         "round $r: data.mdb replaced by its image at the last sync (power cut)");
    }
  }
  for my $pid (@kids) { waitpid($pid, 0); }
  my ($rs, $ra) = (0, 0);
  for my $i (1 .. $CLIENTS) {
    for my $kind (['sent', \%sent, \$rs], ['acked', \%acked, \$ra]) {
      open my $fh, '<', "$dir/$kind->[0].$r.$i" or die;
      while (my $l = <$fh>) { chomp $l; $kind->[1]{$l}++; ${ $kind->[2] }++; }
    }
  }
  note("round $r: sent $rs, acknowledged $ra");
  ok($ra > 0, "round $r: clients saw $ra acknowledgments");
  if ($crash) {
    ok($ra < $CLIENTS * $PER_CLIENT, "round $r: the kill came mid-flood (not every submission acknowledged)");
    $srv->start_again;
    pass("round $r: restarted on the same data dir");
  } else {
    is($ra, $CLIENTS * $PER_CLIENT, 'gearmand (no kill): every submission acknowledged');
  }
}
my $nsent = keys %sent;
my $nacked = keys %acked;

# Drain with two pipelined workers until both see NO_JOB.
my %ran;
my $dup_handles = 0;
my %handle_seen;
my @w = map { $srv->conn } 1 .. 2;
$_->can_do($func) for @w;
my $drain_end = Time::HiRes::time() + deadline_secs(120);
my %done;
while (keys(%done) < @w && Time::HiRes::time() < $drain_end) {
  for my $k (0 .. $#w) {
    next if $done{$k};
    my $a = $w[$k]->grab;
    if ($a->{name} eq 'NO_JOB') {
      $done{$k} = 1;
      next;
    }
    die "unexpected $a->{name}" unless $a->{name} eq 'JOB_ASSIGN';
    %done = ();
    $dup_handles++ if $handle_seen{ $a->{args}[0] }++;
    $ran{ $a->{args}[2] }++;
    $w[$k]->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
  }
}
ok(keys(%done) == @w, 'the queue drained (both workers got NO_JOB)');

my @missing = grep { !$ran{$_} } keys %acked;
my @twice = grep { $ran{$_} > 1 } keys %ran;
my @unsent = grep { !$sent{$_} } keys %ran;
is(scalar(@missing), 0, "every acknowledged job ran ($nacked acknowledged)")
  or diag('missing e.g. ' . join(' ', (sort @missing)[0 .. ($#missing < 4 ? $#missing : 4)]));
is(scalar(@twice), 0, 'no job ran twice')
  or diag('twice e.g. ' . join(' ', (sort @twice)[0 .. ($#twice < 4 ? $#twice : 4)]));
is(scalar(@unsent), 0, 'nothing ran that was not sent');
is($dup_handles, 0, 'no handle was handed out twice');
my $extra = grep { !$acked{$_} } keys %ran;
note('ran ' . scalar(keys %ran) . " distinct payloads, $extra of them sent but unacknowledged");
ok($extra <= $nsent - $nacked, 'unacknowledged jobs that ran are among those in flight');
is_deeply($srv->status->{$func}, [0, 0, 2], 'status after the drain: 0 queued, 0 running, 2 workers');
$_->close for @w;
done_testing();
