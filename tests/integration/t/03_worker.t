# SPDX-License-Identifier: BSD-3-Clause
# Worker-side packets: CAN_DO, CANT_DO, RESET_ABILITIES, CAN_DO_TIMEOUT,
# PRE_SLEEP/NOOP wake-ups, SET_CLIENT_ID, ECHO.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server();

# --- ECHO -----------------------------------------------------------------
{
  my $c = $srv->conn;
  $c->send_pkt(ECHO_REQ, "hello\0world");
  my $p = $c->expect(ECHO_RES);
  is($p->{magic}, "\0RES", 'ECHO_RES magic');
  is($p->{data}, "hello\0world", 'ECHO_RES returns the same bytes');
  $c->send_pkt(ECHO_REQ, '');
  is($c->expect(ECHO_RES)->{data}, '', 'empty ECHO');
  $c->close;
}

# --- CAN_DO / CANT_DO / RESET_ABILITIES and status worker counts ----------
{
  my $w = $srv->conn;
  $w->can_do('wa', 'wb');
  $w->sync;
  is_deeply($srv->status->{wa}, [0, 0, 1], 'CAN_DO wa: status lists 1 worker');
  is_deeply($srv->status->{wb}, [0, 0, 1], 'CAN_DO wb: status lists 1 worker');
  $w->can_do('wa');    # gearmand quirk: a repeated CAN_DO counts again
  $w->sync;
  is_deeply($srv->status->{wa}, [0, 0, 2], 'CAN_DO wa twice: status counts 2 workers');
  like($srv->admin('workers'), qr/^\d+ 127\.0\.0\.1 - : wa wb wa\n/m,
       'CAN_DO wa twice: workers lists wa twice, newest first');
  $w->send_pkt(CANT_DO, 'wa');
  $w->sync;
  is_deeply($srv->status->{wa}, [0, 0, 0], 'one CANT_DO removes both registrations');
  like($srv->admin('workers'), qr/^\d+ 127\.0\.0\.1 - : wb\n/m, 'workers lists wb only');
  $w->can_do('wa');

  my $c = $srv->conn;
  my $hb = $c->submit(SUBMIT_JOB_BG, 'wb', '', 'b');
  $w->send_pkt(CANT_DO, 'wb');
  $w->sync;
  is_deeply($srv->status->{wb}, [1, 0, 0], 'CANT_DO wb: 0 workers, job still queued');
  is($w->grab->{name}, 'NO_JOB', 'after CANT_DO the worker is not given wb jobs');
  $w->send_pkt(RESET_ABILITIES);
  $w->sync;
  is_deeply($srv->status->{wa}, [0, 0, 0], 'RESET_ABILITIES: wa has 0 workers');
  $w->can_do('wb');
  my $a = $w->grab;
  is_deeply($a->{args}, [$hb, 'wb', 'b'], 'CAN_DO again: the queued job is handed out');
  $w->send_pkt(WORK_COMPLETE, $hb, '');
  $w->sync;
  $w->close;
  $c->close;
}

# --- SET_CLIENT_ID shows in `workers` --------------------------------------
{
  my $w = $srv->conn;
  $w->send_pkt(SET_CLIENT_ID, 'my worker-7');
  $w->can_do('idf1');
  $w->can_do('idf2');
  $w->sync;
  my $out = $srv->admin('workers');
  like($out, qr/^\d+ 127\.0\.0\.1 my worker-7 : idf2 idf1\n/m,
       'workers: "FD IP ID : functions" with the id verbatim, newest function first');
  like($out, qr/^\d+ 127\.0\.0\.1 - :\n/m, 'a connection without an id shows "-" (the admin one)');
  $w->close;
}

# --- PRE_SLEEP / NOOP -------------------------------------------------------
{
  my $c = $srv->conn;
  my $w = $srv->conn;
  my $other = $srv->conn;
  $w->can_do('sl');
  $other->can_do('sl_other');
  $w->send_pkt(PRE_SLEEP);
  $other->send_pkt(PRE_SLEEP);
  $w->sync;
  $other->sync;
  ok($w->quiet(0.2), 'PRE_SLEEP with nothing queued: no NOOP');
  my $h1 = $c->submit(SUBMIT_JOB_BG, 'sl', '', 'one');
  my $n = $w->expect(NOOP);
  is($n->{data}, '', 'submission wakes the sleeping worker with NOOP (no data)');
  is($n->{magic}, "\0RES", 'NOOP magic');
  my $h2 = $c->submit(SUBMIT_JOB_BG, 'sl', '', 'two');
  ok($w->quiet(0.3), 'a second job before GRAB_JOB sends no second NOOP');
  ok($other->quiet(0.05), 'a sleeping worker of another function is not woken');
  is($w->grab->{args}[0], $h1, 'after NOOP, GRAB_JOB gets the first job');
  $w->send_pkt(WORK_COMPLETE, $h1, '');
  $w->send_pkt(PRE_SLEEP);
  $w->expect(NOOP);
  pass('PRE_SLEEP while a job is queued: NOOP at once');
  is($w->grab->{args}[0], $h2, 'then GRAB_JOB gets it');
  $w->send_pkt(WORK_COMPLETE, $h2, '');
  $w->sync;
  $c->close; $w->close; $other->close;
}

# --- CAN_DO_TIMEOUT: the job is requeued silently after the timeout --------
{
  my $c = $srv->conn;
  my $w = $srv->conn;
  $w->send_pkt(CAN_DO_TIMEOUT, 'slow', 1000);
  my $h = $c->submit(SUBMIT_JOB, 'slow', '', 'x');
  my $a = $w->grab;
  is($a->{args}[0], $h, 'CAN_DO_TIMEOUT registers the function: job assigned');
  my $line = wait_until(sub {
      my ($l) = grep { /^\Q$h\E\t/ } split /\n/, $srv->admin('show jobs');
      $l && (split /\t/, $l)[1] >= 1 ? $l : undef }, 8);
  ok($line, 'after the 1000 ms timeout the job is requeued with retries >= 1');
  is_deeply($srv->status->{slow}, [1, 0, 1], 'status: 1 queued, 0 running');
  ok($c->quiet(0.05), 'the client is told nothing about the timeout');
  $w->send_pkt(WORK_COMPLETE, $h, 'late');
  is($w->expect(ERROR)->{args}[0], 'JOB_NOT_FOUND',
     'the timed-out worker\'s WORK_COMPLETE -> ERROR JOB_NOT_FOUND');
  my $w2 = $srv->conn;
  $w2->can_do('slow');
  is($w2->grab->{args}[0], $h, 'another worker gets the job again');
  $w2->send_pkt(WORK_COMPLETE, $h, 'ok');
  is($c->expect(WORK_COMPLETE)->{data}, "$h\0ok", 'client gets the second run\'s result');
  $c->close; $w->close; $w2->close;
}

done_testing();
