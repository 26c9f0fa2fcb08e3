# SPDX-License-Identifier: BSD-3-Clause
# GET_STATUS, GET_STATUS_UNIQUE, and every WORK_* packet forwarded to the
# foreground clients; WORK_EXCEPTION vs WORK_FAIL conversion; OPTION_REQ;
# WORK_* from a connection that does not hold the job.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server();

sub get_status {
  my ($c, $h) = @_;
  $c->send_pkt(GET_STATUS, $h);
  return $c->expect(STATUS_RES)->{data};
}

sub get_status_unique {
  my ($c, $u) = @_;
  $c->send_pkt(GET_STATUS_UNIQUE, $u);
  return $c->expect(STATUS_RES_UNIQUE)->{data};
}

# --- GET_STATUS through a job's life --------------------------------------
{
  my $c = $srv->conn;
  is(get_status($c, 'H:nohost:999999'), "H:nohost:999999\0" . "0\0" . "0\0" . "0\0" . "0",
     'GET_STATUS unknown handle -> handle,0,0,0,0');
  is(get_status_unique($c, 'nosuchunique'),
     join("\0", 'nosuchunique', 0, 0, 0, 0, 0),
     'GET_STATUS_UNIQUE unknown -> unique,0,0,0,0,0');

  my $h = $c->submit(SUBMIT_JOB, 'st', 'stu', 'x');
  my $o = $srv->conn;    # a second client asks about it
  is(get_status($o, $h), join("\0", $h, 1, 0, 0, 0), 'queued: known=1 running=0 0/0');
  is(get_status_unique($o, 'stu'), join("\0", 'stu', 1, 0, 0, 0, 1),
     'GET_STATUS_UNIQUE queued: unique,1,0,0,0,1 (one waiting client)');

  my $w = $srv->conn;
  $w->can_do('st');
  is($w->grab->{args}[0], $h, 'worker got the job');
  is(get_status($o, $h), join("\0", $h, 1, 1, 0, 0), 'running: known=1 running=1 0/0');

  $w->send_pkt(WORK_STATUS, $h, 3, 10);
  is($c->expect(WORK_STATUS)->{data}, "$h\0" . "3\0" . "10",
     'WORK_STATUS forwarded: handle, 3, 10');
  is(get_status($o, $h), join("\0", $h, 1, 1, 3, 10), 'GET_STATUS shows 3/10');
  is(get_status_unique($o, 'stu'), join("\0", 'stu', 1, 1, 3, 10, 1),
     'GET_STATUS_UNIQUE running: unique,1,1,3,10,1');

  $w->send_pkt(WORK_DATA, $h, "chunk\0one");
  is($c->expect(WORK_DATA)->{data}, "$h\0chunk\0one", 'WORK_DATA forwarded byte for byte');
  $w->send_pkt(WORK_WARNING, $h, 'careful');
  is($c->expect(WORK_WARNING)->{data}, "$h\0careful", 'WORK_WARNING forwarded');
  $w->send_pkt(WORK_COMPLETE, $h, 'result');
  my $p = $c->expect(WORK_COMPLETE);
  is($p->{magic}, "\0RES", 'forwarded packets carry \\0RES magic');
  is($p->{data}, "$h\0result", 'WORK_COMPLETE forwarded');
  $w->sync;
  my $gone = join("\0", $h, 0, 0, 0, 0);
  is(wait_until(sub { my $s = get_status($o, $h); $s eq $gone ? $s : undef }, 5),
     $gone, 'after completion: unknown again');

  # The worker's packets for a finished job are refused.
  $w->send_pkt(WORK_COMPLETE, $h, 'again');
  $p = $w->expect(ERROR);
  is($p->{args}[0], 'JOB_NOT_FOUND', 'WORK_COMPLETE for a finished job -> ERROR JOB_NOT_FOUND');
  $w->send_pkt(WORK_DATA, 'H:none:1', 'x');
  is($w->expect(ERROR)->{args}[0], 'JOB_NOT_FOUND', 'WORK_DATA unknown handle -> JOB_NOT_FOUND');
  $c->close; $o->close; $w->close;
}

# --- WORK_* from a connection that does not hold the job -------------------
{
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB, 'own', '', 'x');
  my $w = $srv->conn;
  $w->can_do('own');
  $w->grab;
  my $x = $srv->conn;
  $x->send_pkt(WORK_COMPLETE, $h, 'stolen');
  is($x->expect(ERROR)->{args}[0], 'JOB_NOT_FOUND',
     'WORK_COMPLETE from another connection -> ERROR JOB_NOT_FOUND');
  $w->send_pkt(WORK_FAIL, $h);
  my $p = $c->expect(WORK_FAIL);
  is($p->{data}, $h, 'WORK_FAIL forwarded: handle only');
  $c->close; $w->close; $x->close;
}

# --- WORK_EXCEPTION: real packet only with OPTION exceptions ---------------
{
  my $plain = $srv->conn;
  my $opt = $srv->conn;
  $opt->send_pkt(OPTION_REQ, 'exceptions');
  my $r = $opt->expect(OPTION_RES);
  is($r->{data}, 'exceptions', 'OPTION_REQ exceptions -> OPTION_RES exceptions');
  my $u = $srv->conn;
  $u->send_pkt(OPTION_REQ, 'EXCEPTIONS');
  is($u->expect(OPTION_RES)->{data}, 'EXCEPTIONS', 'option name is case-insensitive, echoed as sent');
  $u->send_pkt(OPTION_REQ, 'frobnicate');
  my $e = $u->expect(ERROR);
  is($e->{args}[0], 'UNKNOWN_OPTION', 'unknown option -> ERROR UNKNOWN_OPTION');
  is($e->{args}[1], 'Server does not recognize given option', 'UNKNOWN_OPTION text');
  $u->sync;    # connection stays usable

  # Both clients attach to one coalesced job.
  my $h1 = $plain->submit(SUBMIT_JOB, 'exc', 'exu', 'x');
  my $h2 = $opt->submit(SUBMIT_JOB, 'exc', 'exu', 'x');
  is($h2, $h1, 'same unique: same handle');
  my $w = $srv->conn;
  $w->can_do('exc');
  $w->grab;
  $w->send_pkt(WORK_EXCEPTION, $h1, 'boom');
  my $p = $opt->expect(WORK_EXCEPTION);
  is($p->{data}, "$h1\0boom", 'client with exceptions option gets WORK_EXCEPTION handle, data');
  $p = $plain->expect(WORK_FAIL);
  is($p->{data}, "$h1\0", 'other client gets WORK_FAIL (handle keeps a trailing NUL, as gearmand)');
  $w->sync;
  $w->send_pkt(WORK_COMPLETE, $h1, 'late');
  is($w->expect(ERROR)->{args}[0], 'JOB_NOT_FOUND', 'WORK_EXCEPTION ends the job');
  $plain->close; $opt->close; $u->close; $w->close;
}

# --- --exceptions flag turns the option on for every connection -----------
{
  my $s2 = start_server(args => ['--exceptions']);
  my $c = $s2->conn;
  my $h = $c->submit(SUBMIT_JOB, 'exc', '', 'x');
  my $w = $s2->conn;
  $w->can_do('exc');
  $w->grab;
  $w->send_pkt(WORK_EXCEPTION, $h, 'boom');
  is($c->expect(WORK_EXCEPTION)->{data}, "$h\0boom",
     '--exceptions: client without OPTION_REQ gets WORK_EXCEPTION');
  $c->close; $w->close;
  $s2->stop;
}

done_testing();
