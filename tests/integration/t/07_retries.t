# SPDX-License-Identifier: BSD-3-Clause
# --job-retries N: a job whose worker disconnects N times fails with
# WORK_FAIL to its client and is gone; without the flag retries are
# unlimited; a worker's own WORK_FAIL is final.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

# Grab the job on a fresh worker connection and drop the connection.
sub lose_once {
  my ($srv, $func, $h) = @_;
  my $w = $srv->conn;
  $w->can_do($func);
  my $a = $w->grab;
  $w->close;
  return $a->{name} eq 'JOB_ASSIGN' && $a->{args}[0] eq $h;
}

# The job's retry count in "show jobs" (undef while it is not listed).
# Waiting on it, not on "status" showing the job no longer running: a job
# gearraftd hands out at GRAB time shows as running only once that GRAB
# is committed, so "not running" does not prove the lost worker was seen.
sub retries {
  my ($srv, $h) = @_;
  my ($line) = grep { /^\Q$h\E\t/ } split /\n/, $srv->admin('show jobs');
  return $line && (split /\t/, $line)[1];
}

# Requeued after the n-th lost attempt: counted and no longer running.
sub requeued {
  my ($srv, $func, $h, $n) = @_;
  return wait_until(sub {
    my $r = retries($srv, $h);
    defined $r && $r == $n && $srv->status->{$func}[1] == 0 }, 5);
}

{
  my $srv = start_server(args => ['--job-retries', 2]);
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB, 'r2', '', 'x');
  my $hb = $c->submit(SUBMIT_JOB_BG, 'r2b', '', 'y');
  ok(lose_once($srv, 'r2', $h), 'attempt 1 handed out, worker lost');
  ok(requeued($srv, 'r2', $h, 1), 'requeued after attempt 1');
  ok(lose_once($srv, 'r2', $h), 'attempt 2 handed out, worker lost');
  my $p = $c->read_pkt(5);
  is($p && $p->{name}, 'WORK_FAIL', '--job-retries 2: the client gets WORK_FAIL after 2 lost attempts');
  is($p && $p->{data}, $h, 'WORK_FAIL carries the handle');
  ok(wait_until(sub { my $st = $srv->status->{r2}; $st && $st->[0] == 0 }, 5), 'the job is gone');
  my $w = $srv->conn;
  $w->can_do('r2');
  is($w->grab->{name}, 'NO_JOB', 'never handed out again');
  # Background jobs obey the same limit.
  ok(lose_once($srv, 'r2b', $hb), 'bg attempt 1');
  ok(requeued($srv, 'r2b', $hb, 1), 'bg requeued');
  ok(lose_once($srv, 'r2b', $hb), 'bg attempt 2');
  ok(wait_until(sub { my $st = $srv->status->{r2b}; $st && $st->[0] == 0 }, 5),
     'bg job removed after 2 lost attempts');
  $c->close;
  $w->close;
}

{
  my $srv = start_server();
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB, 'r0', '', 'x');
  for my $i (1 .. 5) {
    ok(lose_once($srv, 'r0', $h), "default (unlimited): attempt $i handed out");
    ok(requeued($srv, 'r0', $h, $i), "requeued after attempt $i");
  }
  my ($line) = grep { /^\Q$h\E\t/ } split /\n/, $srv->admin('show jobs');
  like($line, qr/^\Q$h\E\t5\t0\t/, 'show jobs: RETRIES=5');
  my $w = $srv->conn;
  $w->can_do('r0');
  $w->grab;
  $w->send_pkt(WORK_FAIL, $h);
  is($c->expect(WORK_FAIL)->{data}, $h, 'worker WORK_FAIL reaches the client');
  is($w->grab->{name}, 'NO_JOB', 'a failed job is not retried');
  $c->close;
  $w->close;
}

done_testing();
