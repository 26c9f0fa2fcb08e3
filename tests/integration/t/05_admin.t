# SPDX-License-Identifier: BSD-3-Clause
# The text admin protocol, byte for byte: every command's exact reply,
# line endings included (lists and "OK <value>" end in LF, bare OK and ERR
# in CRLF), pipelined lines, CRLF input, and binary/text on one connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server(args => ['--verbose', 'INFO']);
my $c = $srv->conn;
my $INV = 'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+';

# --- fixed replies ----------------------------------------------------------
if (is_gearmand()) {
  is($c->admin('version'), "OK 1.1.20+ds\n", 'version: OK 1.1.20+ds LF');
} else {
  like($c->admin('version'), qr/\AOK [0-9][^\r\n ]*\n\z/, 'version: OK <version> LF');
}
my $pid = $srv->pid;
if ($srv->external) {
  like($c->admin('getpid'), qr/\AOK \d+\n\z/, 'getpid: OK <pid> LF');
} else {
  is($c->admin('getpid'), "OK $pid\n", 'getpid: OK <pid of the server> LF');
}
is($c->admin('getpid extra'), $c->admin('getpid'), 'getpid ignores extra words');
is($c->admin('verbose'), "OK INFO\n", 'verbose: OK <level> LF (started with --verbose INFO)');
is($c->admin('VERSION'), $c->admin('version'), 'command names ignore case');
is($c->admin("version\r\n"), $c->admin('version'), 'CRLF-terminated command accepted');

# --- errors -----------------------------------------------------------------
is($c->admin('bogus'), "ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n",
   'unknown command: ERR UNKNOWN_COMMAND ...<word> CRLF');
is($c->admin('show'), "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n", 'bare show');
is($c->admin('show foo'), "ERR UNKNOWN_SHOW_ARGUMENTS\r\n", 'show <other>');
is($c->admin('cancel'), "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n", 'bare cancel');
is($c->admin('cancel job'), "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n",
   'cancel job without handle');
is($c->admin('cancel job H:nohost:4242'), "ERR UNKNOWN_JOB\r\n", 'cancel unknown job');
is($c->admin('maxqueue'), "${INV}maxqueue\r\n", 'bare maxqueue');
is($c->admin('create'), "${INV}create\r\n", 'bare create');
is($c->admin('create function'), "${INV}create\r\n", 'create function without name');
is($c->admin('drop'), "${INV}drop\r\n", 'bare drop');
is($c->admin('drop function'), "${INV}drop\r\n", 'drop function without name');
is($c->admin('drop function nosuch'), "ERR function not found\r\n", 'drop unknown function');

# --- cluster: gearraftd's own (gearmand has no such command) ---------------
if (is_gearmand()) {
  is($c->admin('cluster'), "ERR UNKNOWN_COMMAND Unknown+server+commandcluster\r\n",
     'gearmand: cluster is an unknown command');
} elsif ($srv->external) {
  like($c->admin('cluster'), qr/\Aself=\S+ leader=\S+ term=\d+ commit=\d+ applied=\d+ .*\n(?:name=.*\n)+\.\n\z/,
       'gearraftd: cluster: a KEY=VALUE line, a line per member, "." LF');
} else {
  like($c->admin('cluster'),
       qr/\Aself=local\ leader=local\ term=\d+\ commit=\d+\ applied=\d+\ last=\d+
          \ role=leader\ cluster=\S+\n
          name=local\ addr=-\ role=leader\ match=\d+\ reachable=self\n\.\n\z/x,
       'gearraftd: cluster on the one-node default: itself, "local", leading alone');
}
SKIP: {
  skip 'GEARRAFT is not set', 2 unless $ENV{GEARRAFT};
  my ($rc, $out, $err) = gearraft_run('-h', $srv->host, '-p', $srv->port, 'cluster');
  if (is_gearmand()) {
    is($rc, 1, 'gearraft cluster against gearmand: exit 1');
    like($err, qr/does not answer `cluster` as gearraftd does: ERR UNKNOWN_COMMAND/,
         '... saying what it answered');
  } else {
    is($rc, 0, 'gearraft cluster: exit 0') or diag $err;
    like($out, qr/^NAME\s+ADDRESS\s+ROLE\s+MATCH\s+REACHABLE$/m, '... prints the members');
  }
}

# --- empty lists -------------------------------------------------------------
is($c->admin('status'), ".\n", 'status on an empty server: ".\n"');
is($c->admin('prioritystatus'), ".\n", 'prioritystatus on an empty server');
is($c->admin('show jobs'), ".\n", 'show jobs on an empty server');
is($c->admin('show unique jobs'), ".\n", 'show unique jobs on an empty server');
# (wait for the harness's readiness probe connection to be reaped)
like(wait_until(sub { my $r = $c->admin('workers'); ($r =~ tr/\n//) == 2 ? $r : undef }, 5) // '',
     qr/\A\d+ 127\.0\.0\.1 - :\n\.\n\z/,
     'workers lists the admin connection itself: "FD 127.0.0.1 - :"');

# --- status, prioritystatus, show jobs, show unique jobs with jobs ----------
my $k = $srv->conn;
my $h1 = $k->submit(SUBMIT_JOB_HIGH_BG, 'adm', 'ua', 'a');
my $h2 = $k->submit(SUBMIT_JOB_BG, 'adm', '', 'b');
my $h3 = $k->submit(SUBMIT_JOB_LOW_BG, 'adm', 'uc', 'c');
my $h4 = $k->submit(SUBMIT_JOB_BG, 'adm2', 'ud', 'd');
my $w = $srv->conn;
$w->send_pkt(SET_CLIENT_ID, 'wid');
$w->can_do('adm2');
my $a = $w->grab;
is($a->{args}[0], $h4, 'worker holds adm2 job');
is($c->admin('status'), "adm\t3\t0\t0\nadm2\t1\t1\t1\n.\n",
   'status: FUNC TAB TOTAL TAB RUNNING TAB WORKERS LF, then ".\n" (functions in creation order)')
  or diag explain $c->admin('status');
is($c->admin('prioritystatus'), "adm\t1\t1\t1\t0\nadm2\t0\t0\t0\t1\n.\n",
   'prioritystatus: FUNC HIGH NORMAL LOW WORKERS (queued only)');
my $sj = $c->admin('show jobs');
like($sj, qr/\.\n\z/, 'show jobs ends with ".\n"');
my %jobs = map { my @f = split /\t/; ($f[0] => join(',', @f[1 .. $#f])) }
           grep { $_ ne '.' } split /\n/, $sj;
# Background jobs are PERSISTED 1 on both (gearmand counts them as stored
# even with its memory-only queue).
is_deeply(\%jobs, { $h1 => '0,0,1', $h2 => '0,0,1', $h3 => '0,0,1', $h4 => '0,0,1' },
          'show jobs: HANDLE TAB RETRIES TAB IGNORE TAB PERSISTED for each job');
my $su = $c->admin('show unique jobs');
like($su, qr/\.\n\z/, 'show unique jobs ends with ".\n"');
is_deeply([sort grep { $_ ne '.' } split /\n/, $su, -1],
          [sort '', '', 'ua', 'uc', 'ud'],
          'show unique jobs: one line per job, empty unique as an empty line');
like($c->admin('workers'), qr/^\d+ 127\.0\.0\.1 wid : adm2\n/m, 'workers shows the worker id and function');

# --- cancel job --------------------------------------------------------------
{
  my $fc = $srv->conn;
  my $hf = $fc->submit(SUBMIT_JOB, 'canc', '', 'x');
  is($c->admin("cancel job $hf"), "OK\r\n", 'cancel job queued foreground job: OK CRLF');
  is($fc->expect(WORK_FAIL)->{data}, $hf, 'its client gets WORK_FAIL');
  my ($line) = grep { /^\Q$hf\E\t/ } split /\n/, $c->admin('show jobs');
  if (is_gearmand()) {
    is($line, "$hf\t0\t1\t0", 'gearmand: cancelled job stays listed with IGNORE=1 until a worker grabs');
  } else {
    ok(!defined $line || $line eq "$hf\t0\t1\t0", 'cancelled job is gone or listed with IGNORE=1');
  }
  my $cw = $srv->conn;
  $cw->can_do('canc');
  is($cw->grab->{name}, 'NO_JOB', 'a cancelled job is never handed out');
  is_deeply($srv->status->{canc}, [0, 0, 1], 'status after the cancelled job is dropped');
  $cw->close;
  $fc->close;
}

# --- maxqueue and QUEUE_ERROR -----------------------------------------------
{
  is($c->admin('maxqueue nosuchfunc 1'), "OK\r\n", 'maxqueue on an unknown function: OK');
  is($c->admin('maxqueue adm 3'), "OK\r\n", 'maxqueue FUNC N: OK CRLF');
  $k->send_pkt(SUBMIT_JOB_BG, 'adm', '', 'over');
  my $e = $k->expect(ERROR);
  is($e->{data}, "QUEUE_ERROR\0Job queue is full", 'queue at its limit: ERROR QUEUE_ERROR "Job queue is full"');
  $k->send_pkt(SUBMIT_JOB, 'adm', '', 'over');
  is($k->expect(ERROR)->{args}[0], 'QUEUE_ERROR', 'foreground submissions are refused too');
  is($c->admin('maxqueue adm 5 3 0'), "OK\r\n", 'maxqueue FUNC HIGH NORMAL LOW: OK');
  $k->send_pkt(SUBMIT_JOB_BG, 'adm', '', 'n');
  is($k->expect(ERROR)->{args}[0], 'QUEUE_ERROR', 'normal limit 3 with 3 jobs: refused');
  my $hl = $k->submit(SUBMIT_JOB_LOW_BG, 'adm', '', 'l');
  ok($hl, 'low limit 0 (unlimited): accepted');
  my $hh = $k->submit(SUBMIT_JOB_HIGH_BG, 'adm', '', 'h');
  ok($hh, 'high limit 5 with 4 jobs: accepted');
  $k->send_pkt(SUBMIT_JOB_HIGH_BG, 'adm', '', 'h2');
  is($k->expect(ERROR)->{args}[0], 'QUEUE_ERROR', 'high limit 5 with 5 jobs: refused');
  is($c->admin('maxqueue adm'), "OK\r\n", 'maxqueue FUNC: back to unlimited');
  ok($k->submit(SUBMIT_JOB_BG, 'adm', '', 'n2'), 'unlimited again: accepted');
  is($srv->status->{adm}[0], 6, 'status total counts the 6 accepted jobs');
}

# --- create / drop function ---------------------------------------------------
{
  # gearadmin ends its lines in CRLF: the function is created as named.
  is($c->admin("create function mkfn\r\n"), "OK\r\n", 'create function (CRLF): OK CRLF');
  is_deeply($srv->status->{mkfn}, [0, 0, 0], 'created function listed in status as 0 0 0');
  is($c->admin("drop function mkfn\r\n"), "OK\r\n", 'drop function on an empty function: OK');
  ok(!exists $srv->status->{mkfn}, 'dropped function is gone from status');
  # With a bare LF, gearmand 1.1.20 takes one byte too few of the name.
  is($c->admin("create function lfname\n"), "OK\r\n", 'create function (LF): OK CRLF');
  my $st = $srv->status;
  if (is_gearmand()) {
    is_deeply($st->{lfnam}, [0, 0, 0],
              'gearmand 1.1.20 bug: create function with LF line drops the last character');
    is($c->admin("drop function lfname\n"), "ERR function not found\r\n",
       'drop function looks up the full name, which was never created');
    is($c->admin("drop function lfname\r\n"), "ERR function not found\r\n",
       'same with CRLF');
    is($c->admin("drop function lfnam\r\n"), "OK\r\n", 'the truncated name drops');
  } else {
    is_deeply($st->{lfname}, [0, 0, 0],
              'create function (LF) creates the whole name (gearmand bug fixed)');
    ok(!exists $st->{lfnam}, 'and no truncated name');
    is($c->admin("drop function lfname\n"), "OK\r\n", 'drop function (LF): OK');
  }
  is($c->admin('drop function adm2'), "ERR there are still connected workers or executing clients\r\n",
     'drop function with a worker: refused');
  # Queued jobs but no worker: gearmand drops the function and its jobs
  # vanish from status; gearraftd refuses, keeping the acknowledged jobs.
  my $q = $srv->conn;
  $q->submit(SUBMIT_JOB_BG, 'dropq', '', 'x');
  my $r = $c->admin("drop function dropq\r\n");
  if (is_gearmand()) {
    is($r, "OK\r\n", 'gearmand: drop function with queued jobs: OK');
    ok(!exists $srv->status->{dropq}, 'gearmand: the function and its queued job vanish from status');
  } else {
    is($r, "ERR there are still connected workers or executing clients\r\n",
       'gearraftd: drop function with queued jobs: refused');
    is_deeply($srv->status->{dropq}, [1, 0, 0], 'gearraftd: the queued job is kept');
  }
  $q->close;
}

# --- several commands in one write, mixed line endings ----------------------
{
  my $m = $srv->conn;
  $m->send_raw("version\r\ngetpid\nbogus\r\nverbose\n");
  my $v = $c->admin('version');
  my $g = $c->admin('getpid');
  is($m->read_admin, $v, 'pipelined 1: version');
  is($m->read_admin, $g, 'pipelined 2: getpid');
  is($m->read_admin, "ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n", 'pipelined 3: error');
  is($m->read_admin, "OK INFO\n", 'pipelined 4: verbose');
  # Binary and text on the same connection.
  $m->send_pkt(ECHO_REQ, 'bin');
  is($m->expect(ECHO_RES)->{data}, 'bin', 'binary packet after admin lines');
  is($m->admin('version'), $v, 'admin line after a binary packet');
  $m->close;
}

# --- shutdown: removed in gearmand 1.1.20, present in gearraftd ------------
{
  my $s2 = start_server(need_own => 1);
  my $m = $s2->conn;
  if (is_gearmand()) {
    is($m->admin('shutdown'), "ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n",
       'gearmand: shutdown is an unknown command');
    ok($s2->alive, 'gearmand keeps running');
  } else {
    is($m->admin('shutdown'), "OK\r\n", 'gearraftd: shutdown answers OK CRLF');
    ok(defined $s2->wait_exit(10), 'gearraftd: the process exits after shutdown');
    $s2->start_again;
    $m = $s2->conn;
    is($m->admin('shutdown graceful'), "OK\r\n", 'gearraftd: shutdown graceful answers OK CRLF');
    ok(defined $s2->wait_exit(10), 'gearraftd: exits after shutdown graceful with no jobs running');
    # With a job running, graceful waits for it.
    $s2->start_again;
    my $k2 = $s2->conn;
    my $hj = $k2->submit(SUBMIT_JOB_BG, 'gr', '', 'x');
    my $w2 = $s2->conn;
    $w2->can_do('gr');
    is($w2->grab->{args}[0], $hj, 'a worker holds a job');
    $m = $s2->conn;
    is($m->admin('shutdown graceful'), "OK\r\n", 'shutdown graceful while a job runs: OK');
    ok(!defined $s2->wait_exit(0.5), 'the server waits for the running job');
    $w2->send_pkt(WORK_COMPLETE, $hj, 'done');
    ok(defined $s2->wait_exit(10), 'and exits once it completes');
  }
}

$w->close;
$k->close;
$c->close;
done_testing();
