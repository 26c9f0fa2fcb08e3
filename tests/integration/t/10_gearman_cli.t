# SPDX-License-Identifier: BSD-3-Clause
# Debian's gearman-tools against the server: the `gearman` client and
# worker modes and every `gearadmin` flag, checking what they print.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use POSIX ();

for my $tool (qw(gearman gearadmin)) {
  plan(skip_all => "$tool not installed (Debian gearman-tools)")
    unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

my $srv = start_server();
my $H = $srv->host;
my $P = $srv->port;

# Run a command with a time limit; returns (exit code, stdout+stderr).
sub run {
  my ($cmd, $stdin) = @_;
  my $full = "timeout -k 2 20 $cmd";
  my $out;
  if (defined $stdin) {
    pipe(my $r, my $wfh) or die;
    my $pid = open(my $fh, '-|') // die;
    if ($pid == 0) {
      close $wfh;
      open STDIN, '<&', $r;
      open STDERR, '>&', \*STDOUT;
      { exec '/bin/sh', '-c', $full; }
      POSIX::_exit(127);
    }
    close $r;
    print $wfh $stdin;
    close $wfh;
    local $/;
    $out = <$fh>;
    close $fh;
  } else {
    $out = `$full 2>&1 </dev/null`;
  }
  return ($? >> 8, $out // '');
}

sub gearadmin { my ($flags) = @_; return run("gearadmin -h $H -p $P $flags"); }

# Start `gearman -w` as a background worker that runs COUNT jobs through
# CMD; returns its pid. Any still running when the test ends are killed.
my @workers;
END {
  local $?;
  for my $pid (@workers) {    # only our children not yet reaped
    kill('KILL', -$pid) if waitpid($pid, POSIX::WNOHANG()) == 0;
  }
}
sub start_worker {
  my ($func, $count, @cmd) = @_;
  my $pid = fork() // die;
  push @workers, $pid if $pid;
  if ($pid == 0) {
    POSIX::setpgid(0, 0);
    open STDOUT, '>', '/dev/null';
    open STDIN, '<', '/dev/null';
    { exec('timeout', '-k', '2', '30', 'gearman', '-h', $H, '-p', $P, '-w',
           '-f', $func, '-c', $count, '--', @cmd); }
    POSIX::_exit(127);
  }
  return $pid;
}

sub wait_workers {
  my ($func, $n) = @_;
  return wait_until(sub { my $st = $srv->status->{$func}; $st && $st->[2] == $n }, 10);
}

# --- gearman client + gearman worker: foreground round trip -----------------
{
  my $wp = start_worker('up', 3, 'tr', 'a-z', 'A-Z');
  ok(wait_workers('up', 1), 'gearman -w registered the function');
  my ($rc, $out) = run("gearman -h $H -p $P -f up", "hello world");
  is($rc, 0, 'gearman -f up exits 0');
  is($out, 'HELLO WORLD', 'gearman client prints the worker\'s result');
  ($rc, $out) = run("gearman -h $H -p $P -f up -s");
  is($out, '', 'gearman -s sends an empty job; result is empty');
  ($rc, $out) = run("gearman -h $H -p $P -f up -- abc");
  is($out, 'ABC', 'data as argument');
  waitpid($wp, 0);
  is($? >> 8, 0, 'gearman -w -c 3 exits 0 after 3 jobs');
}

# --- a failing worker command: WORK_FAIL, "Job failed", exit 1 -----------
{
  my $wp = start_worker('fails', 1, 'false');
  ok(wait_workers('fails', 1), 'worker running `false` ready');
  my ($rc, $out) = run("gearman -h $H -p $P -f fails -- x");
  is($out, "Job failed\n", 'gearman client prints "Job failed"');
  is($rc, 1, 'and exits 1');
  waitpid($wp, 0);
}

# --- a worker that throws, a client without the exceptions option ---------
# The `gearman` client does not ask for exceptions, so a WORK_EXCEPTION
# reaches it as WORK_FAIL. gearmand 1.1.20 keeps a NUL after the handle
# there, libgearman does not match it to the task, and the client waits
# until it is killed; gearraftd's WORK_FAIL carries the handle alone.
{
  pipe(my $r, my $wfh) or die;
  my $limit = is_gearmand() ? 3 : 20;
  my $pid = fork() // die;
  if ($pid == 0) {
    close $r;
    open STDOUT, '>&', $wfh;
    open STDERR, '>&', $wfh;
    open STDIN, '<', '/dev/null';
    { exec('timeout', '-k', '2', $limit, 'gearman', '-h', $H, '-p', $P, '-f', 'throws', '--', 'x'); }
    POSIX::_exit(127);
  }
  close $wfh;
  my $w = $srv->conn;
  $w->can_do('throws');
  ok(wait_until(sub { my $st = $srv->status->{throws}; $st && $st->[0] == 1 }, 10),
     'the gearman client submitted its job');
  my $a = $w->grab;
  is($a->{type}, JOB_ASSIGN, 'the worker is handed the job');
  my ($h) = split /\0/, $a->{data};
  $w->send_pkt(WORK_EXCEPTION, $h, 'it threw');
  my $out = do { local $/; <$r> };
  waitpid($pid, 0);
  my $rc = $? >> 8;
  if (is_gearmand()) {
    is($rc, 124, 'gearmand: the gearman client never sees the failure (killed by timeout)');
  } else {
    is($out, "Job failed\n", 'the gearman client prints "Job failed" at once');
    is($rc, 1, 'and exits 1');
  }
  $w->close;
}

# --- two foreground clients with one -u: one execution, both get it -------
{
  my @out;
  my @pids;
  for my $k (0, 1) {
    pipe(my $r, my $wfh) or die;
    my $pid = fork() // die;
    if ($pid == 0) {
      close $r;
      open STDOUT, '>&', $wfh;
      open STDIN, '<', '/dev/null';
      { exec('timeout', '-k', '2', '30', 'gearman', '-h', $H, '-p', $P, '-f', 'co', '-u', 'same', '--', "data$k"); }
      POSIX::_exit(127);
    }
    close $wfh;
    push @pids, [$pid, $r];
  }
  my $q = $srv->conn;
  ok(wait_until(sub {
       $q->send_pkt(GET_STATUS_UNIQUE, 'same');
       (split /\0/, $q->expect(STATUS_RES_UNIQUE)->{data})[5] == 2 }, 10),
     'gearman -u same twice: one job with 2 waiting clients');
  is_deeply($srv->status->{co}, [1, 0, 0], 'status: one job');
  my $wp = start_worker('co', 1, 'tr', 'a-z', 'A-Z');
  for my $p (@pids) {
    my $fh = $p->[1];
    local $/;
    push @out, scalar <$fh>;
    waitpid($p->[0], 0);
  }
  waitpid($wp, 0);
  is($out[0], $out[1], 'both clients print the same result');
  like($out[0], qr/\ADATA[01]\z/, 'the one execution used the first submission\'s payload');
  $q->close;
}

# --- -n: one job per line --------------------------------------------------
{
  my $wp = start_worker('lines', 3, 'tr', 'a-z', 'A-Z');
  ok(wait_workers('lines', 1), 'worker for -n ready');
  my ($rc, $out) = run("gearman -h $H -p $P -f lines -n", "one\ntwo\nthree\n");
  is($out, "ONE\nTWO\nTHREE\n", 'gearman -n: one job per input line, results in order');
  waitpid($wp, 0);
}

# --- background, priorities, unique ------------------------------------------
{
  my ($rc, $out) = run("gearman -h $H -p $P -f bgf -b -- d1");
  is($rc, 0, 'gearman -b exits 0');
  is($out, '', 'gearman -b prints nothing');
  run("gearman -h $H -p $P -f bgf -b -I -- hi");
  run("gearman -h $H -p $P -f bgf -b -L -- lo");
  is_deeply($srv->prioritystatus->{bgf}, [1, 1, 1, 0], 'gearman -b / -I / -L: one job per priority');
  run("gearman -h $H -p $P -f bgf -b -u myuniq -- u1");
  run("gearman -h $H -p $P -f bgf -b -u myuniq -- u2");
  is_deeply($srv->status->{bgf}, [4, 0, 0], 'gearman -u: two submissions with one unique coalesce');
  ($rc, $out) = run("gearman -v -h $H -p $P -f bgf -b -- vv");
  like($out, qr/^Task created: (\S+)$/m, 'gearman -v -b prints the handle');
  my ($h) = $out =~ /^Task created: (\S+)$/m;

  # gearadmin --show-jobs lists it; --cancel-job removes it
  my ($arc, $jobs) = gearadmin('--show-jobs');
  like($jobs, qr/^\Q$h\E\t0\t0\t[01]\n/m, 'gearadmin --show-jobs lists the handle');
  like($jobs, qr/\n\.\n\z/, 'gearadmin --show-jobs ends with "."');
  my ($urc, $uj) = gearadmin('--show-unique-jobs');
  like($uj, qr/^myuniq$/m, 'gearadmin --show-unique-jobs lists the unique');
  is(scalar(() = $uj =~ /^myuniq$/mg), 1, 'listed once');

  # A worker drains them in priority order: the output file shows the order.
  my $file = $srv->dir . '/order.txt';
  my $wp = start_worker('bgf', 5, 'sh', '-c', "cat >> $file; echo >> $file");
  waitpid($wp, 0);
  open my $fh, '<', $file or die;
  my @order = map { chomp; $_ } <$fh>;
  is_deeply(\@order, [qw(hi d1 u1 vv lo)],
            'background jobs ran HIGH, then NORMAL in FIFO order, then LOW');
}

# --- gearadmin, every flag ---------------------------------------------------
{
  my $k = $srv->conn;
  my $h = $k->submit(SUBMIT_JOB_BG, 'adm', 'ua', 'x');
  my $w = $srv->conn;
  $w->can_do('adm');
  $w->sync;
  my ($rc, $out) = gearadmin('--status');
  is($rc, 0, 'gearadmin --status exits 0');
  like($out, qr/^adm\t1\t0\t1\n/m, 'gearadmin --status: adm 1 0 1');
  like($out, qr/\n\.\n\z/, '--status ends with "."');
  ($rc, $out) = gearadmin('--priority-status');
  like($out, qr/^adm\t0\t1\t0\t1\n/m, 'gearadmin --priority-status: adm 0 1 0 1');
  ($rc, $out) = gearadmin('--workers');
  like($out, qr/^\d+ 127\.0\.0\.1 - : adm\n/m, 'gearadmin --workers lists the worker');
  ($rc, $out) = gearadmin('--server-version');
  if (is_gearmand()) {
    is($out, "1.1.20+ds\n", 'gearadmin --server-version: 1.1.20+ds');
  } else {
    like($out, qr/\A[0-9][^\s]*\n\z/, 'gearadmin --server-version prints a version');
  }
  ($rc, $out) = gearadmin('--getpid');
  if ($srv->external) {
    like($out, qr/\A\d+\n\z/, 'gearadmin --getpid prints a pid');
  } else {
    is($out, $srv->pid . "\n", 'gearadmin --getpid prints the server pid');
  }
  ($rc, $out) = gearadmin('--server-verbose');
  is($out, "ERROR\n", 'gearadmin --server-verbose: ERROR (the default level)');
  ($rc, $out) = gearadmin('--create-function newfn');
  is($out, "OK\n", 'gearadmin --create-function: OK');
  is_deeply($srv->status->{newfn}, [0, 0, 0], 'the function exists');
  ($rc, $out) = gearadmin('--drop-function newfn');
  is($out, "OK\n", 'gearadmin --drop-function: OK');
  ok(!$srv->status->{newfn}, 'the function is gone');
  ($rc, $out) = gearadmin('--drop-function nosuch');
  is($out, "Error: function not found\r\n", 'gearadmin --drop-function unknown: Error: function not found');
  ($rc, $out) = gearadmin("--cancel-job $h");
  is($out, "OK\n", 'gearadmin --cancel-job: OK');
  ($rc, $out) = gearadmin('--cancel-job H:nohost:77');
  is($out, "Error: UNKNOWN_JOB\r\n", 'gearadmin --cancel-job unknown: Error: UNKNOWN_JOB');
  is($w->grab->{name}, 'NO_JOB', 'the cancelled job is not handed out');
  $k->close;
  $w->close;
}

done_testing();
