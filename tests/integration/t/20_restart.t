# SPDX-License-Identifier: BSD-3-Clause
# gearraftd durability across restarts: queued background AND foreground
# jobs come back after SIGKILL and after SIGTERM, with the same handles,
# priorities, order, payloads and unique keys; new handles never collide
# with old ones. gearmand (memory-only builtin queue) is not expected to
# do any of this, so the test skips there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use POSIX ();

plan(skip_all => 'durability across restarts is a gearraftd promise; '
                 . 'stock gearmand keeps its builtin queue in memory only')
  unless is_gearraftd();

my $srv = start_server(need_own => 1);

sub show_jobs {
  my %j;
  for my $l (split /\n/, $srv->admin('show jobs')) {
    next if $l eq '.';
    my @f = split /\t/, $l;
    $j{ $f[0] } = 1;
  }
  return \%j;
}

for my $how ('SIGKILL', 'SIGTERM') {
  my $c = $srv->conn;
  my @sub = ([SUBMIT_JOB_LOW_BG, 'dur', '', 'low1'],
             [SUBMIT_JOB_BG, 'dur', 'keyA', 'norm1'],
             [SUBMIT_JOB_HIGH_BG, 'dur', '', 'high1'],
             [SUBMIT_JOB_BG, 'dur', '', "bin\0ary"],
             [SUBMIT_JOB_HIGH, 'dur', 'fgkey', 'fg-high'],
             [SUBMIT_JOB_EPOCH, 'dur_ep', 'epk', time() + 3600, 'future']);
  my @h = map { $c->submit(@$_) } @sub;
  my $fg = $h[4];
  is(scalar(keys %{ { map { $_ => 1 } @h } }), 6, "$how: six distinct handles");
  my $before = show_jobs();
  my $status = $srv->status;
  my $prio = $srv->prioritystatus;

  if ($how eq 'SIGKILL') {
    $srv->crash_restart;
  } else {
    my $st = $srv->stop(20);
    ok(defined $st && POSIX::WIFEXITED($st) && POSIX::WEXITSTATUS($st) == 0,
       'SIGTERM: clean exit with status 0');
    $srv->start_again;
  }
  $c->close;
  pass("$how: restarted on the same data dir");

  is_deeply(show_jobs(), $before, "$how: show jobs lists the same handles after restart");
  is_deeply($srv->prioritystatus->{dur}, $prio->{dur}, "$how: prioritystatus unchanged");
  is($srv->status->{dur}[0], $status->{dur}[0], "$how: status total unchanged");

  my $q = $srv->conn;
  $q->send_pkt(GET_STATUS, $fg);
  is($q->expect(STATUS_RES)->{data}, join("\0", $fg, 1, 0, 0, 0),
     "$how: the foreground job's handle is still known");
  # Coalescing on a restored unique key gives the restored handle.
  is($q->submit(SUBMIT_JOB_BG, 'dur', 'keyA', 'again'), $h[1],
     "$how: same unique after restart -> the same handle");
  my $new = $q->submit(SUBMIT_JOB_BG, 'dur_new', '', 'n');
  ok(!grep({ $_ eq $new } @h), "$how: a new job's handle does not collide with restored ones");

  my $w = $srv->conn;
  $w->can_do('dur');
  my @got;
  while (1) {
    my $a = $w->grab;
    last if $a->{name} ne 'JOB_ASSIGN';
    push @got, [$a->{args}[0], $a->{args}[2]];
    $w->send_pkt(WORK_COMPLETE, $a->{args}[0], 'ok');
    last if @got > 10;
  }
  is_deeply(\@got, [[$h[2], 'high1'], [$h[4], 'fg-high'], [$h[1], 'norm1'],
                    [$h[3], "bin\0ary"], [$h[0], 'low1']],
            "$how: jobs come back in priority then FIFO order, same handles and payloads");
  $w->send_pkt(CAN_DO, 'dur_new');
  my $a = $w->grab;
  $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '') if $a->{name} eq 'JOB_ASSIGN';
  is_deeply($srv->status->{dur_ep}, [1, 0, 0], "$how: the future epoch job is still queued");
  is(show_jobs()->{ $h[5] }, 1, "$how: with its handle");
  # Leave the epoch job; cancel it so the next round starts clean.
  is($q->admin("cancel job $h[5]"), "OK\r\n", "$how: cancel the epoch job");
  $w->sync;
  $q->close;
  $w->close;
}

# Completed jobs stay completed after a crash.
{
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB_BG, 'done', '', 'x');
  my $w = $srv->conn;
  $w->can_do('done');
  is($w->grab->{args}[0], $h, 'job assigned');
  $w->send_pkt(WORK_COMPLETE, $h, '');
  $w->sync;
  ok(wait_until(sub { $srv->status->{done}[0] == 0 }, 5), 'completed');
  $srv->crash_restart;
  my $w2 = $srv->conn;
  $w2->can_do('done');
  is($w2->grab->{name}, 'NO_JOB', 'a completed job does not come back after SIGKILL');
  $w2->close;
}

# A job running when the server dies runs again after restart.
{
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB_BG, 'inflight', '', 'y');
  my $w = $srv->conn;
  $w->can_do('inflight');
  is($w->grab->{args}[0], $h, 'job running');
  $srv->crash_restart;
  my $w2 = $srv->conn;
  $w2->can_do('inflight');
  my $a = wait_until(sub { my $g = $w2->grab; $g->{name} eq 'JOB_ASSIGN' ? $g : undef }, 10);
  is($a && $a->{args}[0], $h, 'a job running at SIGKILL is handed out again, same handle');
  $w2->send_pkt(WORK_COMPLETE, $h, '') if $a;
  $w2->sync;
}

# An epoch job survives a crash and still wakes a sleeping worker when due.
{
  my $c = $srv->conn;
  my $due = time() + 3;
  my $h = $c->submit(SUBMIT_JOB_EPOCH, 'ep_after', 'epa', $due, 'due-later');
  $srv->crash_restart;
  my $w = $srv->conn;
  $w->can_do('ep_after');
  is($w->grab->{name}, 'NO_JOB', 'restored epoch job not handed out before its time');
  $w->send_pkt(PRE_SLEEP);
  my $a;
  for my $round (1 .. 5) {
    my $n = $w->read_pkt(deadline_secs(8));
    last unless $n && $n->{name} eq 'NOOP';
    my $g = $w->grab;
    if ($g->{name} eq 'JOB_ASSIGN') { $a = $g; last; }
    $w->send_pkt(PRE_SLEEP);
  }
  is_deeply($a && $a->{args}, [$h, 'ep_after', 'due-later'],
            'after a crash, the sleeping worker is woken when the epoch job falls due');
  ok(time() >= $due, 'not before its epoch');
  $w->send_pkt(WORK_COMPLETE, $h, '') if $a;
  $w->sync;
}

done_testing();
