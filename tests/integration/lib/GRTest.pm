# SPDX-License-Identifier: BSD-3-Clause
#
# tests/integration/lib/GRTest.pm - harness for the integration suite.
#
# Starts the Gearman server under test (stock gearmand or gearraftd, chosen
# by GR_SERVER) in its own temp dir and process group on an ephemeral
# 127.0.0.1 port, waits for it by connecting, and kills it when the test
# ends (also when the test dies). Gives raw-protocol connections that
# speak exact bytes, so tests can assert what a client would see.
#
# Environment:
#   GR_SERVER      gearmand (default) or gearraftd; gearmand-sqlite (by hand
#                  only) runs gearmand with its libsqlite3 queue
#   GEARRAFTD      path to the gearraftd binary (GR_SERVER=gearraftd)
#   GEARMAND       path to gearmand (default /usr/sbin/gearmand)
#   GEARRAFT       path to the gearraft command line tool (tests of it skip
#                  without)
#   GR_TEST_NODES  host:port of an already running server to reuse; tests
#                  that need their own flags or a restart skip then.
#   GR_CLUSTER_ARGS  flags added to every node start_cluster starts (e.g.
#                  "--verbose INFO" to read what a cluster did)
package GRTest;

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes ();
use Test::More ();

our @EXPORT = qw(
  server_kind is_gearraftd is_gearmand start_server start_cluster
  CAN_DO CANT_DO RESET_ABILITIES PRE_SLEEP NOOP SUBMIT_JOB JOB_CREATED
  GRAB_JOB NO_JOB JOB_ASSIGN WORK_STATUS WORK_COMPLETE WORK_FAIL GET_STATUS
  ECHO_REQ ECHO_RES SUBMIT_JOB_BG ERROR STATUS_RES SUBMIT_JOB_HIGH
  SET_CLIENT_ID CAN_DO_TIMEOUT ALL_YOURS WORK_EXCEPTION OPTION_REQ
  OPTION_RES WORK_DATA WORK_WARNING GRAB_JOB_UNIQ JOB_ASSIGN_UNIQ
  SUBMIT_JOB_HIGH_BG SUBMIT_JOB_LOW SUBMIT_JOB_LOW_BG SUBMIT_JOB_SCHED
  SUBMIT_JOB_EPOCH SUBMIT_REDUCE_JOB SUBMIT_REDUCE_JOB_BACKGROUND
  GRAB_JOB_ALL JOB_ASSIGN_ALL GET_STATUS_UNIQUE STATUS_RES_UNIQUE
  pkt_name deadline_secs wait_until powercut_env sync_watch gearraft_run
  free_port
);

# Packet numbers (docs/protocol.md, "Packets").
use constant {
  CAN_DO => 1, CANT_DO => 2, RESET_ABILITIES => 3, PRE_SLEEP => 4,
  NOOP => 6, SUBMIT_JOB => 7, JOB_CREATED => 8, GRAB_JOB => 9, NO_JOB => 10,
  JOB_ASSIGN => 11, WORK_STATUS => 12, WORK_COMPLETE => 13, WORK_FAIL => 14,
  GET_STATUS => 15, ECHO_REQ => 16, ECHO_RES => 17, SUBMIT_JOB_BG => 18,
  ERROR => 19, STATUS_RES => 20, SUBMIT_JOB_HIGH => 21, SET_CLIENT_ID => 22,
  CAN_DO_TIMEOUT => 23, ALL_YOURS => 24, WORK_EXCEPTION => 25,
  OPTION_REQ => 26, OPTION_RES => 27, WORK_DATA => 28, WORK_WARNING => 29,
  GRAB_JOB_UNIQ => 30, JOB_ASSIGN_UNIQ => 31, SUBMIT_JOB_HIGH_BG => 32,
  SUBMIT_JOB_LOW => 33, SUBMIT_JOB_LOW_BG => 34, SUBMIT_JOB_SCHED => 35,
  SUBMIT_JOB_EPOCH => 36, SUBMIT_REDUCE_JOB => 37,
  SUBMIT_REDUCE_JOB_BACKGROUND => 38, GRAB_JOB_ALL => 39,
  JOB_ASSIGN_ALL => 40, GET_STATUS_UNIQUE => 41, STATUS_RES_UNIQUE => 42,
};

my %NAMES = (
  1 => 'CAN_DO', 2 => 'CANT_DO', 3 => 'RESET_ABILITIES', 4 => 'PRE_SLEEP',
  6 => 'NOOP', 7 => 'SUBMIT_JOB', 8 => 'JOB_CREATED', 9 => 'GRAB_JOB',
  10 => 'NO_JOB', 11 => 'JOB_ASSIGN', 12 => 'WORK_STATUS',
  13 => 'WORK_COMPLETE', 14 => 'WORK_FAIL', 15 => 'GET_STATUS',
  16 => 'ECHO_REQ', 17 => 'ECHO_RES', 18 => 'SUBMIT_JOB_BG', 19 => 'ERROR',
  20 => 'STATUS_RES', 21 => 'SUBMIT_JOB_HIGH', 22 => 'SET_CLIENT_ID',
  23 => 'CAN_DO_TIMEOUT', 24 => 'ALL_YOURS', 25 => 'WORK_EXCEPTION',
  26 => 'OPTION_REQ', 27 => 'OPTION_RES', 28 => 'WORK_DATA',
  29 => 'WORK_WARNING', 30 => 'GRAB_JOB_UNIQ', 31 => 'JOB_ASSIGN_UNIQ',
  32 => 'SUBMIT_JOB_HIGH_BG', 33 => 'SUBMIT_JOB_LOW', 34 => 'SUBMIT_JOB_LOW_BG',
  35 => 'SUBMIT_JOB_SCHED', 36 => 'SUBMIT_JOB_EPOCH', 37 => 'SUBMIT_REDUCE_JOB',
  38 => 'SUBMIT_REDUCE_JOB_BACKGROUND', 39 => 'GRAB_JOB_ALL',
  40 => 'JOB_ASSIGN_ALL', 41 => 'GET_STATUS_UNIQUE', 42 => 'STATUS_RES_UNIQUE',
);

# Number of arguments of each response type (the last one is opaque).
my %NARGS = (
  6 => 0, 8 => 1, 10 => 0, 11 => 3, 12 => 3, 13 => 2, 14 => 1, 17 => 1,
  19 => 2, 20 => 5, 25 => 2, 27 => 1, 28 => 2, 29 => 2, 31 => 4, 40 => 5,
  42 => 6,
);

sub pkt_name { my ($t) = @_; return $NAMES{$t} // "TYPE$t"; }

sub server_kind { return $ENV{GR_SERVER} || 'gearmand'; }
sub is_gearraftd { return server_kind() eq 'gearraftd'; }
sub is_gearmand { return server_kind() =~ /\Agearmand/; }

# Time budget helper: seconds, scaled by GR_TIME_SCALE (slow CI, ASan).
sub deadline_secs {
  my ($s) = @_;
  return $s * ($ENV{GR_TIME_SCALE} || 1);
}

# Poll COND (a sub) until true or TIMEOUT seconds pass; returns its value.
# Used to wait for state visible only through polling (admin output); the
# pause between polls is short and the wait ends at the first success.
sub wait_until {
  my ($cond, $timeout) = @_;
  my $end = Time::HiRes::time() + deadline_secs($timeout // 10);
  my $pause = 0.005;
  while (1) {
    my $v = $cond->();
    return $v if $v;
    return $v if Time::HiRes::time() > $end;
    select(undef, undef, undef, $pause);
    $pause = 0.1 if ($pause *= 2) > 0.1;
  }
}

# gearraft_run(@args) -> (exit status, stdout, stderr): runs the gearraft
# tool ($ENV{GEARRAFT}) with @args and waits for it.
sub gearraft_run {
  my (@args) = @_;
  my $bin = $ENV{GEARRAFT} or die 'gearraft_run needs GEARRAFT';
  my $dir = File::Temp::tempdir('gr-tool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
  my $pid = fork() // die "fork: $!";
  if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$dir/out";
    open STDERR, '>', "$dir/err";
    { exec $bin, @args; }
    POSIX::_exit(127);
  }
  waitpid($pid, 0);
  my $rc = $? >> 8;
  my %got;
  for my $f (qw(out err)) {
    open my $fh, '<', "$dir/$f" or die "$dir/$f: $!";
    local $/;
    $got{$f} = <$fh> // '';
  }
  return ($rc, $got{out}, $got{err});
}

# ---------------------------------------------------------------------------
# Servers

my @LIVE;    # servers to kill at exit
my $OWNER = $$;    # only the test process kills them, never a forked child

# A port on 127.0.0.1 that nobody listens on (as of the call).
sub free_port { return _free_port(); }

sub _free_port {
  my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'tcp', Listen => 1, ReuseAddr => 0)
    or die "cannot bind an ephemeral port: $!";
  my $p = $s->sockport;
  close $s;
  return $p;
}

# start_server(%opt) -> GRTest::Server
#   args    => [extra flags, e.g. '--job-retries', 2]
#   need_own => 1 : the test needs its own process (flags, restart); it is
#                   skipped under GR_TEST_NODES.
# The power-cut variant (tests/integration/powercut.c): the environment
# that preloads the library into gearraftd, which keeps the data file's
# image as of its last completed sync in shadow.mdb in the server's
# directory ($srv->cut_power puts it in place). EXTRA adds settings
# (GR_POWERCUT_SLOW_SYNC_US, GR_POWERCUT_FAIL_FILE). Empty without
# GR_POWERCUT_LIB.
sub powercut_env {
  my (%extra) = @_;
  my $lib = $ENV{GR_POWERCUT_LIB} or return {};
  return {
    LD_PRELOAD => $lib,
    GR_POWERCUT_SHADOW => 'shadow.mdb',    # relative to the server's cwd
    # A sanitizer build wants its runtime first; this library comes ahead.
    ASAN_OPTIONS => join(':', grep { length } $ENV{ASAN_OPTIONS} // '',
                         'verify_asan_link_order=0'),
    %extra,
  };
}

# A FIFO the power-cut library writes a byte to as each sync of the data
# file begins: pass ->fifo as GR_POWERCUT_SYNC_FIFO; ->forget drops the
# syncs announced so far, ->await waits for the next one (true) or times
# out (false).
sub sync_watch {
  my $fifo = File::Temp::tempdir(CLEANUP => 1) . '/syncs';
  POSIX::mkfifo($fifo, 0600) or die "mkfifo $fifo: $!";
  sysopen(my $r, $fifo, POSIX::O_RDONLY() | POSIX::O_NONBLOCK())
    or die "open $fifo: $!";
  # A writer of our own, so the FIFO never reads as ended when a killed
  # server's end closes.
  sysopen(my $w, $fifo, POSIX::O_WRONLY() | POSIX::O_NONBLOCK())
    or die "open $fifo: $!";
  return bless { fifo => $fifo, r => $r, w => $w }, 'GRTest::SyncWatch';
}

sub start_server {
  my (%opt) = @_;
  if ($ENV{GR_TEST_NODES}) {
    if ($opt{need_own} || @{ $opt{args} || [] }) {
      my $why = 'needs its own server process; GR_TEST_NODES reuses a running one';
      Test::More::plan(skip_all => $why)
        unless Test::More->builder->current_test;
      Test::More::note("rest of the file skipped: $why");
      Test::More::done_testing();
      exit 0;
    }
    my ($h, $p) = split /:/, (split /,/, $ENV{GR_TEST_NODES})[0];
    return bless { host => $h, port => $p, external => 1 }, 'GRTest::Server';
  }
  my $dir = File::Temp::tempdir('gr-integ-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{GR_KEEP_TMP});
  my $srv = bless { host => '127.0.0.1', dir => $dir,
                    args => $opt{args} || [], kind => server_kind(),
                    env => $opt{env} || {}, starts => 0 }, 'GRTest::Server';
  $srv->{datadir} = "$dir/data";
  push @LIVE, $srv;
  for my $try (1 .. 5) {
    $srv->{port} = _free_port();
    return $srv if $srv->_spawn;
  }
  die "server did not start; see logs in $dir";
}

# start_cluster($n, %opt) -> list of GRTest::Server, one per node of a new
# cluster of $n gearraftd on 127.0.0.1 (node names n1 .. n$n), each with
# its own data dir, Gearman port and peer port ($node->{peer}, HOST:PORT).
# args => [...] is added to every node's flags, and node_args => sub { my
# ($k) = @_; ... } returns node $k's own (1-based). The nodes elect a leader
# on their own; a test waits for what it needs (a submission
# acknowledged, say). proxy => a GRProxy for $n nodes: each node dials its
# peers through it (its own --initial-cluster names the proxy's ports), so
# the test can cut links between nodes.
sub start_cluster {
  my ($n, %opt) = @_;
  Test::More::plan(skip_all => 'a cluster is gearraftd\'s') unless is_gearraftd();
  my $px = $opt{proxy};
  my @peer = map { $px ? $px->node_port($_) : _free_port() } 1 .. $n;
  my $initial = join(',', map { "n$_=127.0.0.1:$peer[$_ - 1]" } 1 .. $n);
  my @nodes;
  for my $k (1 .. $n) {
    push @nodes, start_server(
      need_own => 1,
      args => ['--node-id', "n$k", '--peer-listen', "127.0.0.1:$peer[$k - 1]",
               '--initial-cluster', $px ? $px->initial_cluster($k) : $initial,
               @{ $opt{args} || [] },
               split(' ', $ENV{GR_CLUSTER_ARGS} // ''),
               ($opt{node_args} ? $opt{node_args}->($k) : ())]);
    $nodes[-1]{name} = "n$k";
    $nodes[-1]{peer} = "127.0.0.1:$peer[$k - 1]";
  }
  return @nodes;
}

END {
  my $rc = $?;
  if ($$ == $OWNER) {
    for my $s (@LIVE) { $s->kill('KILL'); }
    _show_logs() if $rc || !Test::More->builder->is_passing;
  }
  $? = $rc;
}

# On failure, show the tail of each server's stderr and log file: a
# sanitizer report or an assertion message is usually there.
sub _show_logs {
  for my $s (@LIVE) {
    next unless $s->{dir};
    for my $f (sort glob("$s->{dir}/stderr.log $s->{dir}/server.*.log")) {
      next unless -s $f;
      open my $fh, '<', $f or next;
      my @l = <$fh>;
      splice(@l, 0, @l - 30) if @l > 30;
      print STDERR "# --- $f (last lines)\n", map({ "#   $_" } @l);
    }
  }
}
for my $sig (qw(INT TERM HUP)) {
  $SIG{$sig} = sub {
    if ($$ == $OWNER) { for my $s (@LIVE) { $s->kill('KILL'); } }
    POSIX::_exit(1);
  };
}

package GRTest::Server;

use strict;
use warnings;
use Cwd ();
use IO::Select;
use POSIX ();
use Time::HiRes ();

sub port { $_[0]{port} }
sub host { $_[0]{host} }
sub dir { $_[0]{dir} }
sub pid { $_[0]{pid} }
sub addr { my $s = shift; return "$s->{host}:$s->{port}"; }
sub external { $_[0]{external} }
sub datadir { $_[0]{datadir} }

sub command {
  my ($s) = @_;
  my $n = ++$s->{starts};
  my $log = "$s->{dir}/server.$n.log";
  $s->{log} = $log;
  if ($s->{kind} eq 'gearraftd') {
    my $bin = $ENV{GEARRAFTD} or die 'GR_SERVER=gearraftd needs GEARRAFTD';
    # The server runs in its own directory: a relative path would break.
    $bin = Cwd::abs_path($bin) // $bin;
    return ($bin, '--port', $s->{port}, '--listen', '127.0.0.1',
            '--data-dir', $s->{datadir}, '--log-file', $log,
            @{ $s->{args} });
  }
  my $bin = $ENV{GEARMAND} || '/usr/sbin/gearmand';
  # gearmand-sqlite: gearmand's own durable queue, used by hand to show
  # that the crash test catches lost jobs (it is not registered in CTest).
  my @q = $s->{kind} eq 'gearmand-sqlite'
        ? ('--queue-type', 'libsqlite3', '--libsqlite3-db', "$s->{datadir}.sqlite")
        : ();
  my @pid = grep({ /\A(?:-P|--pid-file)/ } @{ $s->{args} })
          ? () : ('--pid-file', "$s->{dir}/gearmand.pid");
  return ($bin, @q, '--port', $s->{port}, '--listen', '127.0.0.1',
          '--log-file', $log, @pid,
          '--config-file', '/dev/null', '--threads', 0,
          @{ $s->{args} });
}

# Fork the server in its own process group; wait until it accepts.
sub _spawn {
  my ($s) = @_;
  my @cmd = $s->command;
  my $pid = fork() // die "fork: $!";
  if ($pid == 0) {
    POSIX::setpgid(0, 0);
    chdir $s->{dir};
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', "$s->{dir}/stdout.log";
    open STDERR, '>>', "$s->{dir}/stderr.log";
    $ENV{$_} = $s->{env}{$_} for keys %{ $s->{env} };
    { exec @cmd; }
    POSIX::_exit(127);
  }
  POSIX::setpgid($pid, $pid);    # both sides, to avoid a race
  $s->{pid} = $pid;
  my $end = Time::HiRes::time() + GRTest::deadline_secs(20);
  my $pause = 0.002;
  while (Time::HiRes::time() < $end) {
    my $r = waitpid($pid, POSIX::WNOHANG());
    if ($r == $pid) {
      delete $s->{pid};
      return 0;    # exited: port taken, or bad flags; caller retries
    }
    my $c = IO::Socket::INET->new(PeerAddr => $s->{host},
                                  PeerPort => $s->{port}, Proto => 'tcp');
    if ($c) {
      # Make sure it is our process answering, not another test's server
      # that took the port first: ask for its pid.
      my $other = _pid_mismatch($c, $pid);
      close $c;
      if ($other) {
        $s->kill('KILL');
        return 0;
      }
      return 1;
    }
    select(undef, undef, undef, $pause);
    $pause *= 2 if $pause < 0.05;
  }
  $s->kill('KILL');
  return 0;
}

# True when the server on socket C reports a pid other than PID.
sub _pid_mismatch {
  my ($c, $pid) = @_;
  syswrite($c, "getpid\n");
  my $buf = '';
  my $sel = IO::Select->new($c);
  my $end = Time::HiRes::time() + GRTest::deadline_secs(5);
  while ($buf !~ /\n/ && Time::HiRes::time() < $end) {
    last unless $sel->can_read($end - Time::HiRes::time());
    last unless sysread($c, $buf, 256, length $buf);
  }
  return $buf =~ /\AOK (\d+)\n/ && $1 != $pid;
}

# Send SIG to the server's process group and reap it.
sub kill {
  my ($s, $sig) = @_;
  return if $s->{external} || !$s->{pid};
  CORE::kill($sig, -$s->{pid});
  CORE::kill($sig, $s->{pid});
  if ($sig eq 'KILL') {
    waitpid($s->{pid}, 0);
    delete $s->{pid};
  }
}

# SIGTERM and wait up to TIMEOUT for a clean exit; returns the exit status
# (or undef when it had to be killed).
sub stop {
  my ($s, $timeout) = @_;
  return if $s->{external} || !$s->{pid};
  CORE::kill('TERM', $s->{pid});
  my $end = Time::HiRes::time() + GRTest::deadline_secs($timeout // 10);
  while (Time::HiRes::time() < $end) {
    if (waitpid($s->{pid}, POSIX::WNOHANG()) == $s->{pid}) {
      my $st = $?;
      delete $s->{pid};
      return $st;
    }
    select(undef, undef, undef, 0.01);
  }
  $s->kill('KILL');
  return undef;
}

# Wait for the process to exit by itself (e.g. after admin shutdown).
sub wait_exit {
  my ($s, $timeout) = @_;
  my $end = Time::HiRes::time() + GRTest::deadline_secs($timeout // 10);
  while (Time::HiRes::time() < $end) {
    if (waitpid($s->{pid}, POSIX::WNOHANG()) == $s->{pid}) {
      my $st = $?;
      delete $s->{pid};
      return $st;
    }
    select(undef, undef, undef, 0.01);
  }
  return undef;
}

# SIGKILL (crash) then start again on the same port and data dir.
sub crash_restart {
  my ($s) = @_;
  $s->kill('KILL');
  return $s->start_again;
}

sub start_again {
  my ($s) = @_;
  for my $try (1 .. 50) {
    return 1 if $s->_spawn;    # the old port may linger briefly
  }
  die "server did not restart on port $s->{port}; logs in $s->{dir}";
}

# After the server died (powercut_env): its data file becomes what a power
# cut would have left, the image as of the last completed sync.
sub cut_power {
  my ($s) = @_;
  return rename("$s->{dir}/shadow.mdb", "$s->{datadir}/data.mdb");
}

# One background submission on a fresh connection: true if it got
# JOB_CREATED (false for ERROR, a close, or no answer in 10 s).
sub submit_accepted {
  my ($s, $func, $payload) = @_;
  my $t = $s->conn;
  $t->send_pkt(GRTest::SUBMIT_JOB_BG, $func, '', $payload);
  my $p = $t->read_pkt(10);
  $t->close;
  return $p && $p->{type} == GRTest::JOB_CREATED;
}

sub alive {
  my ($s) = @_;
  return 0 unless $s->{pid};
  return waitpid($s->{pid}, POSIX::WNOHANG()) == 0;
}

sub conn { my ($s) = @_; return GRTest::Conn->new($s); }

# Parsed `status`: { func => [total, running, workers] }.
sub status {
  my ($s) = @_;
  my %m;
  for my $l (split /\n/, $s->admin('status')) {
    next if $l eq '.';
    my ($f, @n) = split /\t/, $l;
    $m{$f} = \@n;
  }
  return \%m;
}

# Parsed `prioritystatus`: { func => [high, normal, low, workers] }.
sub prioritystatus {
  my ($s) = @_;
  my %m;
  for my $l (split /\n/, $s->admin('prioritystatus')) {
    next if $l eq '.';
    my ($f, @n) = split /\t/, $l;
    $m{$f} = \@n;
  }
  return \%m;
}

# Parsed `cluster` (gearraftd): { node => {key => value} of the first
# line, members => [{key => value} per member line] }, or undef when the
# reply is not one (an ERR line).
sub cluster {
  my ($s) = @_;
  my $r = $s->admin('cluster');
  return undef unless $r =~ /\Aself=/ && $r =~ /\n\.\n\z/;
  my ($head, @lines) = grep { $_ ne '.' } split /\n/, $r;
  my $kv = sub { return { map { split /=/, $_, 2 } split / /, $_[0] }; };
  return { node => $kv->($head), members => [map { $kv->($_) } @lines] };
}

# One admin command on a fresh connection; returns the full reply text.
sub admin {
  my ($s, $cmd) = @_;
  my $c = $s->conn;
  my $r = $c->admin($cmd);
  $c->close;
  return $r;
}

package GRTest::SyncWatch;

use strict;
use warnings;
use IO::Select;
use Time::HiRes ();

sub fifo { $_[0]{fifo} }

sub forget {
  my ($s) = @_;
  1 while sysread($s->{r}, my $buf, 4096);
}

sub await {
  my ($s) = @_;
  my $sel = IO::Select->new($s->{r});
  my $end = Time::HiRes::time() + GRTest::deadline_secs(30);
  while ((my $left = $end - Time::HiRes::time()) > 0) {
    next unless $sel->can_read($left);
    return 1 if sysread($s->{r}, my $buf, 4096);
  }
  return 0;
}

package GRTest::Conn;

use strict;
use warnings;
use Carp ();
our @CARP_NOT = ('GRTest', 'GRTest::Server');
use IO::Socket::INET;
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes ();

sub new {
  my ($class, $srv) = @_;
  my $sock = IO::Socket::INET->new(PeerAddr => $srv->host,
                                   PeerPort => $srv->port, Proto => 'tcp')
    or Carp::croak("connect " . $srv->addr . ": $!");
  setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
  binmode $sock;
  return bless { sock => $sock, buf => '', srv => $srv }, $class;
}

sub sock { $_[0]{sock} }

sub close {
  my ($c) = @_;
  close $c->{sock} if $c->{sock};
  delete $c->{sock};
}

sub send_raw {
  my ($c, $bytes) = @_;
  my $off = 0;
  while ($off < length $bytes) {
    my $n = syswrite($c->{sock}, $bytes, length($bytes) - $off, $off);
    die "write: $!" unless defined $n;
    $off += $n;
  }
}

sub encode {
  my ($type, @args) = @_;
  my $data = join("\0", @args);
  return "\0REQ" . pack('NN', $type, length $data) . $data;
}

sub send_pkt {
  my ($c, $type, @args) = @_;
  $c->send_raw(encode($type, @args));
}

# Read more bytes into the buffer; 0 on EOF, undef on timeout.
sub _fill {
  my ($c, $timeout) = @_;
  my $sel = IO::Select->new($c->{sock});
  return undef unless $sel->can_read($timeout);
  my $n = sysread($c->{sock}, my $chunk, 65536);
  return 0 if !$n;
  $c->{buf} .= $chunk;
  return $n;
}

# Next packet: { type, name, magic, data, args => [...] }, undef on
# timeout, { eof => 1 } when the server closed the connection.
sub read_pkt {
  my ($c, $timeout) = @_;
  my $end = Time::HiRes::time() + GRTest::deadline_secs($timeout // 5);
  while (1) {
    if (length($c->{buf}) >= 12) {
      my ($magic, $type, $len) = unpack('a4NN', $c->{buf});
      if (length($c->{buf}) >= 12 + $len) {
        my $data = substr($c->{buf}, 12, $len);
        substr($c->{buf}, 0, 12 + $len) = '';
        my $n = $NARGS{$type};
        my @args = defined $n && $n > 0 ? split(/\0/, $data, $n) : ($data);
        @args = () if defined $n && $n == 0;
        push @args, ('') x ($n - @args) if defined $n && @args < $n;
        return { type => $type, name => GRTest::pkt_name($type),
                 magic => $magic, data => $data, args => \@args };
      }
    }
    my $left = $end - Time::HiRes::time();
    return undef if $left <= 0;
    my $r = $c->_fill($left);
    return { eof => 1, type => -1, name => 'EOF', args => [] }
      if defined $r && $r == 0;
  }
}

# Read a packet and die (with a readable message) unless it is TYPE.
sub expect {
  my ($c, $type, $timeout) = @_;
  my $p = $c->read_pkt($timeout);
  Carp::croak(sprintf("expected %s, got %s", GRTest::pkt_name($type),
              !$p ? 'nothing (timeout)' : $p->{name} . ' ' . _show($p->{data})))
    unless $p && $p->{type} == $type;
  return $p;
}

sub _show {
  my ($d) = @_;
  return '' unless defined $d;
  (my $s = $d) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
  return "[$s]";
}

# True when no byte arrives within SECS (an absence check, not a barrier).
sub quiet {
  my ($c, $secs) = @_;
  return 0 if length $c->{buf};
  my $r = $c->_fill($secs // 0.3);
  return !defined $r;
}

# True when the server closes the connection within TIMEOUT (bytes before
# the close are collected in $c->{buf}).
sub closed {
  my ($c, $timeout) = @_;
  my $end = Time::HiRes::time() + GRTest::deadline_secs($timeout // 5);
  while (Time::HiRes::time() < $end) {
    my $r = eval { $c->_fill($end - Time::HiRes::time()) };
    return 1 if $@ || (defined $r && $r == 0);
  }
  return 0;
}

# Round trip through the server: ECHO_REQ and wait for its ECHO_RES. Every
# packet sent before it on this connection has been read by then.
sub sync {
  my ($c) = @_;
  my $tag = 'sync-' . (++$c->{syncs});
  $c->send_pkt(GRTest::ECHO_REQ, $tag);
  my $p = $c->expect(GRTest::ECHO_RES);
  Carp::croak('ECHO_RES does not match the ECHO_REQ') unless $p->{data} eq $tag;
}

# Submit and return the handle from JOB_CREATED.
sub submit {
  my ($c, $type, @args) = @_;
  $c->send_pkt($type, @args);
  my $p = $c->expect(GRTest::JOB_CREATED);
  return $p->{data};
}

sub submit_n { my $c = shift; return $c->submit(@_); }

sub can_do {
  my ($c, @f) = @_;
  $c->send_pkt(GRTest::CAN_DO, $_) for @f;
}

# GRAB_JOB and return the JOB_ASSIGN packet (or NO_JOB packet).
sub grab {
  my ($c, $type) = @_;
  $c->send_pkt($type // GRTest::GRAB_JOB);
  my $p = $c->read_pkt;
  Carp::croak('no answer to ' . GRTest::pkt_name($type // GRTest::GRAB_JOB)) unless $p;
  return $p;
}

# Text admin: send a line, read the reply. List replies end with ".\n";
# single-line replies end with "\n". Returns the bytes received.
sub admin {
  my ($c, $cmd, %o) = @_;
  $o{list} //= 1 if $cmd =~ /^\s*(?:status|workers|prioritystatus|show\s+(?:unique\s+)?jobs)\s*\r?\n?\z/i;
  $c->send_raw($cmd =~ /\n\z/ ? $cmd : "$cmd\n");
  return $c->read_admin(%o);
}

sub read_admin {
  my ($c, %o) = @_;
  my $end = Time::HiRes::time() + GRTest::deadline_secs($o{timeout} // 5);
  while (1) {
    my $b = $c->{buf};
    my $done;
    if ($o{list}) {
      $done = $b =~ /(?:\A|\n)\.\n/ ? $+[0] : undef;
    } elsif ($b =~ /\A(?:OK|ERR)/) {
      $done = $b =~ /\n/ ? $+[0] : undef;
    } elsif (length $b) {
      $done = $b =~ /(?:\A|\n)\.\n/ ? $+[0] : undef;
    }
    if (defined $done) {
      my $r = substr($c->{buf}, 0, $done);
      substr($c->{buf}, 0, $done) = '';
      return $r;
    }
    my $left = $end - Time::HiRes::time();
    Carp::croak("admin reply timed out; got " . _show($c->{buf})) if $left <= 0;
    my $r = $c->_fill($left);
    Carp::croak("connection closed during admin reply; got " . _show($c->{buf}))
      if defined $r && $r == 0;
  }
}

1;
