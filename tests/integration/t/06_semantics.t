# SPDX-License-Identifier: BSD-3-Clause
# Job semantics: priority then FIFO, gearmand 1.1's per-function walk
# order, unique coalescing (fg and bg), worker disconnect requeue at the
# tail, client disconnect, the coalesced-job drop (a gearmand bug that
# gearraftd fixes), epoch jobs and their wake-up (fixed in gearraftd).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server();

# Wait until the server has seen client disconnects: GET_STATUS_UNIQUE's
# last field (waiting clients) for UNIQUE is N.
sub wait_clients {
  my ($u, $n) = @_;
  my $q = $srv->conn;
  my $r = wait_until(sub {
    $q->send_pkt(GET_STATUS_UNIQUE, $u);
    my @f = split /\0/, $q->expect(STATUS_RES_UNIQUE)->{data};
    $f[5] == $n ? 1 : undef }, 5);
  $q->close;
  return $r;
}

sub drain {
  my ($w, $n, $grab) = @_;
  my @d;
  for (1 .. $n) {
    my $a = $w->grab($grab);
    last if $a->{name} eq 'NO_JOB';
    push @d, $a->{args}[-1];
    $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
  }
  return \@d;
}

# --- priority, then FIFO within a priority ----------------------------------
{
  my $c = $srv->conn;
  my @sub = ([SUBMIT_JOB_LOW_BG, 'L1'], [SUBMIT_JOB_BG, 'N1'], [SUBMIT_JOB_HIGH_BG, 'H1'],
             [SUBMIT_JOB_BG, 'N2'], [SUBMIT_JOB_LOW_BG, 'L2'], [SUBMIT_JOB_HIGH_BG, 'H2'],
             [SUBMIT_JOB_BG, 'N3'], [SUBMIT_JOB_HIGH_BG, 'H3'], [SUBMIT_JOB_LOW_BG, 'L3']);
  $c->submit($_->[0], 'prio', '', $_->[1]) for @sub;
  my $w = $srv->conn;
  $w->can_do('prio');
  is_deeply(drain($w, 10), [qw(H1 H2 H3 N1 N2 N3 L1 L2 L3)],
            'HIGH before NORMAL before LOW, FIFO within each');
  # Foreground priorities order the same way.
  my @fc;
  for my $s ([SUBMIT_JOB_LOW, 'fl'], [SUBMIT_JOB, 'fn'], [SUBMIT_JOB_HIGH, 'fh']) {
    my $k = $srv->conn;
    $k->submit($s->[0], 'prio', '', $s->[1]);
    push @fc, $k;
  }
  is_deeply(drain($w, 4), [qw(fh fn fl)], 'foreground HIGH, NORMAL, LOW');
  $_->close for @fc, $w, $c;
}

# --- gearmand 1.1 walk: the worker's newest function first, then priority --
{
  my $c = $srv->conn;
  my $w = $srv->conn;
  $w->can_do('pB');
  $w->can_do('pA');
  $c->submit(SUBMIT_JOB_LOW_BG, 'pA', '', 'A-low');
  $c->submit(SUBMIT_JOB_HIGH_BG, 'pB', '', 'B-high');
  $c->submit(SUBMIT_JOB_BG, 'pA', '', 'A-normal');
  is_deeply(drain($w, 4), [qw(A-normal A-low B-high)],
            'priority applies within a function; newest registered function drained first');
  $_->close for $w, $c;
}

# --- unique coalescing -------------------------------------------------------
{
  my $c1 = $srv->conn;
  my $c2 = $srv->conn;
  my $cb = $srv->conn;
  my $h1 = $c1->submit(SUBMIT_JOB, 'co', 'same', 'first');
  my $h2 = $c2->submit(SUBMIT_JOB_HIGH, 'co', 'same', 'second');
  my $hb = $cb->submit(SUBMIT_JOB_BG, 'co', 'same', 'third');
  is($h2, $h1, 'foreground submit with the same unique gets the existing handle');
  is($hb, $h1, 'background submit with the same unique gets the existing handle');
  my $ho = $c1->submit(SUBMIT_JOB_BG, 'co_other', 'same', 'x');
  isnt($ho, $h1, 'same unique, other function: a different job');
  my $he1 = $cb->submit(SUBMIT_JOB_BG, 'co', '', 'e');
  my $he2 = $cb->submit(SUBMIT_JOB_BG, 'co', '', 'e');
  isnt($he1, $he2, 'empty unique never coalesces');
  is_deeply($srv->status->{co}, [3, 0, 0], 'status: 3 jobs for co (one coalesced)');
  is_deeply($srv->prioritystatus->{co}, [0, 3, 0, 0], 'the first submission fixed the priority');
  my $w = $srv->conn;
  $w->can_do('co');
  my $a = $w->grab;
  is_deeply($a->{args}, [$h1, 'co', 'first'], 'the first submission fixed the payload');
  # A submission while it runs joins the running job.
  my $c3 = $srv->conn;
  is($c3->submit(SUBMIT_JOB, 'co', 'same', 'late'), $h1, 'coalesces with a running job too');
  $w->send_pkt(WORK_DATA, $h1, 'part');
  $w->send_pkt(WORK_COMPLETE, $h1, 'all');
  for my $pair ([$c1, 'c1'], [$c2, 'c2'], [$c3, 'c3']) {
    is($pair->[0]->expect(WORK_DATA)->{data}, "$h1\0part", "$pair->[1] gets WORK_DATA");
    is($pair->[0]->expect(WORK_COMPLETE)->{data}, "$h1\0all", "$pair->[1] gets WORK_COMPLETE");
  }
  is_deeply(drain($w, 3), ['e', 'e'], 'then the two uncoalesced jobs; the coalesced job ran once');
  # unique "-" coalesces on the payload
  my $hd1 = $c1->submit(SUBMIT_JOB_BG, 'dash', '-', 'same payload');
  my $hd2 = $c2->submit(SUBMIT_JOB_BG, 'dash', '-', 'same payload');
  my $hd3 = $c2->submit(SUBMIT_JOB_BG, 'dash', '-', 'other payload');
  is($hd2, $hd1, 'unique "-": same payload coalesces');
  isnt($hd3, $hd1, 'unique "-": other payload does not');
  $w->can_do('dash');
  is_deeply([sort @{ drain($w, 3) }], ['other payload', 'same payload'], 'dash: two jobs run');
  $_->close for $c1, $c2, $c3, $cb, $w;
}

# A submission that joins a running job gets its JOB_CREATED before any
# WORK_* sent after it (libgearman and Gearman::Client pair packets with
# tasks by that order); a connection attached twice gets every packet
# twice. One connection is client and worker, so the server reads the
# second submission before the WORK_* packets.
{
  my $c = $srv->conn;
  $c->can_do('ord');
  my $h = $c->submit(SUBMIT_JOB, 'ord', 'ordu', 'x');
  is($c->grab->{args}[0], $h, 'the connection runs its own job');
  $c->send_raw(GRTest::Conn::encode(SUBMIT_JOB, 'ord', 'ordu', 'x')
               . GRTest::Conn::encode(WORK_DATA, $h, 'd')
               . GRTest::Conn::encode(WORK_COMPLETE, $h, 'r'));
  my @seq;
  while (@seq < 5) {
    my $p = $c->read_pkt(5);
    last if !$p || $p->{eof};
    push @seq, $p->{name} . ' ' . $p->{data};
  }
  is_deeply(\@seq, ["JOB_CREATED $h", "WORK_DATA $h\0d", "WORK_DATA $h\0d",
                    "WORK_COMPLETE $h\0r", "WORK_COMPLETE $h\0r"],
            'JOB_CREATED for the joining submission, then each WORK_* once per attachment');
  $c->close;
}

# --- worker disconnect: requeued at the tail, retries counted ---------------
{
  my $c = $srv->conn;
  my $h1 = $c->submit(SUBMIT_JOB, 'rq', '', 'J1');
  my $h2 = $c->submit(SUBMIT_JOB_BG, 'rq', '', 'J2');
  my $w = $srv->conn;
  $w->can_do('rq');
  is($w->grab->{args}[0], $h1, 'worker holds J1');
  $w->send_pkt(WORK_STATUS, $h1, 1, 2);
  $c->expect(WORK_STATUS);
  $w->close;
  my $line = wait_until(sub {
    my ($l) = grep { /^\Q$h1\E\t/ } split /\n/, $srv->admin('show jobs');
    $l && $l =~ /^\S+\t1\t/ ? $l : undef }, 5);
  is($line, "$h1\t1\t0\t" . (is_gearmand() ? 0 : 1),
     'show jobs: J1 requeued with RETRIES=1 (PERSISTED ' . (is_gearmand() ? '0: foreground' : '1') . ')');
  $c->send_pkt(GET_STATUS, $h1);
  is($c->expect(STATUS_RES)->{data}, join("\0", $h1, 1, 0, 0, 0),
     'requeued job: not running, status numbers reset to 0/0');
  my $w2 = $srv->conn;
  $w2->can_do('rq');
  is_deeply(drain($w2, 1), ['J2'], 'J2 comes first: the requeued J1 went to the tail');
  my $a = $w2->grab;
  is($a->{args}[0], $h1, 'then J1 again');
  $w2->send_pkt(WORK_COMPLETE, $h1, 'second run');
  is($c->expect(WORK_COMPLETE)->{data}, "$h1\0second run", 'its client still gets the result');
  $_->close for $c, $w2;
}

# A sleeping worker is woken when a lost worker's job is requeued.
{
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB_BG, 'rqw', '', 'x');
  my $w = $srv->conn;
  $w->can_do('rqw');
  is($w->grab->{args}[0], $h, 'worker holds the only job');
  my $sleeper = $srv->conn;
  $sleeper->can_do('rqw');
  $sleeper->send_pkt(PRE_SLEEP);
  $sleeper->sync;
  ok($sleeper->quiet(0.2), 'nothing queued: the second worker sleeps');
  $w->close;
  $sleeper->expect(NOOP, 10);
  pass('the sleeper gets NOOP when the lost worker\'s job is requeued');
  is($sleeper->grab->{args}[0], $h, 'and runs the job');
  $sleeper->send_pkt(WORK_COMPLETE, $h, '');
  $sleeper->sync;
  $_->close for $c, $sleeper;
}

# --- client disconnect -----------------------------------------------------
{
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB, 'cd', 'cdu', 'gone');
  $c->sync;
  $c->close;
  ok(wait_clients('cdu', 0), 'the server saw the client leave');
  if (is_gearmand()) {
    my $c2 = $srv->conn;
    $c2->sync;
    is_deeply($srv->status->{cd}, [1, 0, 0],
              'gearmand: a queued fg job of a departed client stays counted until a grab');
  }
  my $w = $srv->conn;
  $w->can_do('cd');
  is($w->grab->{name}, 'NO_JOB', 'the departed client\'s queued foreground job is never run');
  is_deeply($srv->status->{cd}, [0, 0, 1], 'and it is gone from status');
  # Running when the client leaves: the worker is not told; its result is accepted.
  my $c3 = $srv->conn;
  my $h3 = $c3->submit(SUBMIT_JOB, 'cd', '', 'running');
  is($w->grab->{args}[0], $h3, 'worker runs the job');
  $c3->close;
  $w->send_pkt(WORK_COMPLETE, $h3, 'nobody listens');
  $w->sync;
  ok($w->quiet(0.2), 'WORK_COMPLETE after the client left: no error to the worker');
  is_deeply(wait_until(sub { my $st = $srv->status->{cd}; $st->[0] == 0 ? $st : undef }, 5),
            [0, 0, 1], 'and the job is finished');
  $w->close;
}

# --- coalesced job whose foreground client leaves (gearmand bug 3.3) --------
for my $order ('bg first', 'fg first') {
  my $cb = $srv->conn;
  my $cf = $srv->conn;
  my ($hb, $hf);
  if ($order eq 'bg first') {
    $hb = $cb->submit(SUBMIT_JOB_BG, 'cj', "u-$order", 'bgdata');
    $hf = $cf->submit(SUBMIT_JOB, 'cj', "u-$order", 'fgdata');
  } else {
    $hf = $cf->submit(SUBMIT_JOB, 'cj', "u-$order", 'fgdata');
    $hb = $cb->submit(SUBMIT_JOB_BG, 'cj', "u-$order", 'bgdata');
  }
  is($hf, $hb, "$order: coalesced");
  $cf->sync;
  $cf->close;
  ok(wait_clients("u-$order", 0), "$order: the server saw the fg client leave");
  my $w = $srv->conn;
  $w->can_do('cj');
  if (is_gearmand()) {
    my $g = $w->grab;
    is($g->{name}, 'NO_JOB',
       "$order: gearmand drops the background-acknowledged job when the fg client leaves");
  } else {
    my $g = $w->grab;
    is($g->{name}, 'JOB_ASSIGN', "$order: gearraftd keeps the job the background client was promised");
    is($g->{args}[0], $hb, "$order: same handle");
    $w->send_pkt(WORK_COMPLETE, $hb, '') if $g->{name} eq 'JOB_ASSIGN';
    $w->sync;
  }
  $_->close for $w, $cb;
}

# Two fg clients on one job, one leaves: the other still gets its result
# (both servers: gearmand drops a job only when no client is left).
{
  my $c1 = $srv->conn;
  my $c2 = $srv->conn;
  my $h = $c1->submit(SUBMIT_JOB, 'two', 'u2', 'x');
  $c2->submit(SUBMIT_JOB, 'two', 'u2', 'x');
  ok(wait_clients('u2', 2), 'two clients wait on the shared job');
  $c1->close;
  ok(wait_clients('u2', 1), 'the server saw one of them leave');
  my $w = $srv->conn;
  $w->can_do('two');
  my $g = $w->grab;
  is($g->{args}[0], $h, 'the shared job still runs');
  $w->send_pkt(WORK_COMPLETE, $h, 'r');
  is($c2->expect(WORK_COMPLETE)->{data}, "$h\0r", 'the remaining client gets the result');
  $_->close for $w, $c2;
}

# --- epoch jobs ---------------------------------------------------------------
{
  my $c = $srv->conn;
  my $w = $srv->conn;
  $w->can_do('ep');
  my $due = time() + 2;
  my $h = $c->submit(SUBMIT_JOB_EPOCH, 'ep', 'epu', $due, 'later');
  is_deeply($srv->status->{ep}, [1, 0, 1], 'future epoch job is queued');
  is($w->grab->{name}, 'NO_JOB', 'not handed out before its time');
  $w->send_pkt(PRE_SLEEP);
  $w->sync;
  if (is_gearmand()) {
    # 1.1.x never wakes a sleeping worker when the job falls due.
    my $end = $due + 2;
    my $quiet = 1;
    while (time() <= $end) {
      $quiet = 0, last unless $w->quiet(0.25);
    }
    ok($quiet, 'gearmand 1.1.20: no NOOP when the epoch job falls due (bug #101)');
  } else {
    # Sleep until woken; an early NOOP is allowed (NO_JOB, sleep again),
    # but the wake-up that hands out the job must come by itself.
    my $a;
    for my $round (1 .. 5) {
      my $n = $w->read_pkt(deadline_secs(6));
      last unless $n && $n->{name} eq 'NOOP';
      my $g = $w->grab;
      if ($g->{name} eq 'JOB_ASSIGN') { $a = $g; last; }
      $w->send_pkt(PRE_SLEEP);
    }
    ok($a, 'gearraftd: the sleeping worker is woken by NOOP when the job falls due');
    is_deeply($a && $a->{args}, [$h, 'ep', 'later'], 'and GRAB_JOB then hands out the epoch job');
    ok(Time::HiRes::time() >= $due, 'not before its epoch');
  }
  if (is_gearmand()) {
    my $a = wait_until(sub { my $g = $w->grab; $g->{name} eq 'NO_JOB' ? undef : $g }, 3);
    is_deeply($a && $a->{args}, [$h, 'ep', 'later'], 'after its time the epoch job is handed out on GRAB_JOB');
    ok(Time::HiRes::time() >= $due, 'not before its epoch');
  }
  $w->send_pkt(WORK_COMPLETE, $h, '');
  $w->sync;
  $_->close for $w, $c;
}

done_testing();
