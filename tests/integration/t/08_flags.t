# SPDX-License-Identifier: BSD-3-Clause
# gearmand's command-line flags that gearraftd shares: --pid-file,
# --log-file, --verbose, --job-retries (07), --exceptions (02); SIGTERM
# ends the server cleanly; gearraftd's --max-packet-size refuses oversize
# packets with ERROR and closes only that connection. gearraftd's own:
# the cluster flags refuse what does not go together (exit 2, a message
# on stderr), a fresh data directory is bootstrapped as the member they
# name and refuses any other node afterwards, and --config reads flags
# from a file that the command line overrides (README.md, "Flags").
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use File::Temp ();
use POSIX ();
use IO::Socket::INET;

my $tmp = File::Temp::tempdir('gr-flags-XXXXXX', TMPDIR => 1, CLEANUP => 1);

{
  my $srv = start_server(args => ['--pid-file', "$tmp/srv.pid", '--verbose', 'WARNING']);
  ok(wait_until(sub { -s "$tmp/srv.pid" }, 5), '--pid-file: the file is written');
  open my $fh, '<', "$tmp/srv.pid" or die;
  my $pid = <$fh>;
  is($pid, $srv->pid . "\n", '--pid-file holds the server pid and a newline');
  is($srv->admin('verbose'), "OK WARNING\n", '--verbose WARNING shows in admin verbose');
  ok(-e $srv->dir . '/server.1.log', '--log-file: the log file is created');
  my $st = $srv->stop(20);
  ok(defined $st && POSIX::WIFEXITED($st), 'SIGTERM: the server exits by itself');
  if (is_gearraftd()) {
    is(POSIX::WEXITSTATUS($st), 0, 'gearraftd: exit status 0 after SIGTERM');
  }
}

# -d/--daemon: the command returns, the daemon serves, its pid file is right.
my $daemon_pid;
END { kill 'KILL', $daemon_pid if $daemon_pid; }
SKIP: {
  skip('needs its own server process', 6) if $ENV{GR_TEST_NODES};
  my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1);
  my $port = $probe->sockport;
  close $probe;
  my @cmd = is_gearraftd()
    ? ($ENV{GEARRAFTD}, '--data-dir', "$tmp/ddata")
    : ($ENV{GEARMAND} || '/usr/sbin/gearmand', '--config-file', '/dev/null', '--threads', 0);
  push @cmd, '--daemon', '--port', $port, '--listen', '127.0.0.1',
       '--pid-file', "$tmp/daemon.pid", '--log-file', "$tmp/daemon.log";
  my $rc = system('timeout', '20', @cmd);
  is($rc, 0, '--daemon: the command returns 0');
  ok(wait_until(sub { -s "$tmp/daemon.pid" }, 10), '--daemon: pid file written');
  open my $fh, '<', "$tmp/daemon.pid" or die;
  ($daemon_pid) = (<$fh> // '') =~ /(\d+)/;
  ok($daemon_pid && kill(0, $daemon_pid), '--daemon: the pid in the file is running');
  my $d = bless { host => '127.0.0.1', port => $port }, 'GRTest::Server';
  ok(wait_until(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) }, 10),
     '--daemon: accepts connections');
  is($d->admin('getpid'), "OK $daemon_pid\n", '--daemon: it serves the port and reports that pid');
  kill 'TERM', $daemon_pid;
  ok(wait_until(sub { !kill(0, $daemon_pid) }, 10), '--daemon: SIGTERM stops it');
  $daemon_pid = undef;
}

SKIP: {
  skip('--max-packet-size is a gearraftd flag (gearmand has no limit)', 6) unless is_gearraftd();
  my $srv = start_server(args => ['--max-packet-size', 1024]);
  my $by = $srv->conn;
  my $h = $by->submit(SUBMIT_JOB_BG, 'mp', '', 'x' x 1000);
  ok($h, 'a packet under the limit is accepted');
  my $c = $srv->conn;
  $c->send_pkt(SUBMIT_JOB_BG, 'mp', '', 'y' x 2000);
  my $e = $c->read_pkt(5);
  is($e && $e->{name}, 'ERROR', 'a packet over --max-packet-size gets ERROR');
  ok($c->closed(5), 'and that connection is closed');
  $by->sync;
  pass('another connection is undisturbed');
  is_deeply($srv->status->{mp}, [1, 0, 0], 'only the accepted job is queued');
  my $w = $srv->conn;
  $w->can_do('mp');
  is($w->grab->{args}[2], 'x' x 1000, 'the accepted job runs');
}

# Runs gearraftd to its exit (it must not get as far as serving: port 0
# and a time limit, in case it does); returns its exit status and stderr.
sub run_gearraftd {
  my (@args) = @_;
  my $err = "$tmp/run.err";
  my $pid = fork() // die "fork: $!";
  if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', $err;
    exec('timeout', '20', $ENV{GEARRAFTD}, '--listen', '127.0.0.1',
         '--port', 0, @args);
    POSIX::_exit(127);
  }
  waitpid($pid, 0);
  my $st = $?;
  open my $fh, '<', $err or die "$err: $!";
  my $text = do { local $/; <$fh> } // '';
  return (POSIX::WIFEXITED($st) ? POSIX::WEXITSTATUS($st) : -1, $text);
}

# Starts gearraftd with ARGS, waits until its stderr matches RE (it is
# serving then), stops it with SIGTERM; true if it matched and exited 0.
sub runs {
  my ($args, $re, $name) = @_;
  my $err = "$tmp/runs.err";
  my $pid = fork() // die "fork: $!";
  if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', $err;
    # No `timeout` wrapper here: the status must be gearraftd's own.
    exec($ENV{GEARRAFTD}, '--listen', '127.0.0.1', '--port', 0, @$args);
    POSIX::_exit(127);
  }
  my $text = '';
  my $seen = wait_until(sub {
    open my $fh, '<', $err or return 0;
    $text = do { local $/; <$fh> } // '';
    return $text =~ $re;
  }, 10);
  kill 'TERM', $pid;
  my $gone = wait_until(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, 10);
  my $st = $?;
  unless ($gone) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $st = -1;
  }
  ok($seen && POSIX::WIFEXITED($st) && POSIX::WEXITSTATUS($st) == 0, $name)
    or diag("status $st, stderr: $text");
}

# Exit status 2 and a message on stderr matching RE.
sub refused {
  my ($args, $re, $name) = @_;
  my ($rc, $err) = run_gearraftd(@$args);
  ok($rc == 2 && $err =~ $re, $name) or diag("exit $rc, stderr: $err");
}

SKIP: {
  skip('the cluster flags and --config are gearraftd\'s', 1) unless is_gearraftd();
  my @peer = ('--peer-listen', '127.0.0.1:7001');
  my @three = ('--initial-cluster',
               'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003');
  my $dd = "$tmp/bad";

  refused(['--data-dir', $dd, '--node-id', 'n1'],
          qr/--node-id needs --peer-listen/, 'a member needs --peer-listen');
  refused(['--data-dir', $dd, @peer], qr/--peer-listen needs --node-id/,
          '--peer-listen needs a node name');
  refused(['--data-dir', $dd, @three], qr/--initial-cluster needs --node-id/,
          '--initial-cluster needs --node-id and --peer-listen');
  refused(['--data-dir', $dd, '--node-id', 'n 1', @peer],
          qr/invalid value 'n 1' for --node-id/, 'a bad node name');
  refused(['--data-dir', $dd, '--node-id', 'n1', '--peer-listen', '::1:7001'],
          qr/IPv6 address goes in brackets/, 'an IPv6 peer address without brackets');
  refused(['--data-dir', $dd, '--node-id', 'n1', '--peer-listen', 'host'],
          qr/port is required/, 'a peer address without a port');
  refused(['--data-dir', $dd, '--node-id', 'n4', @peer, @three],
          qr/--node-id n4 is not in --initial-cluster/, 'this node not among the members');
  refused(['--data-dir', $dd, '--node-id', 'n1', @peer,
           '--initial-cluster', 'n1=h:1,n1=h:2'],
          qr/member 'n1' named twice/, 'a member named twice');
  refused(['--data-dir', $dd, '--heartbeat-interval', 150],
          qr/below half the --election-timeout 300/, 'heartbeats too slow for the election timeout');
  refused(['--data-dir', $dd, '--election-timeout', 4000],
          qr/--node-gone-timeout 10000 must be at least 3 times/, 'node-gone timeout too short');
  ok(!-e $dd, 'no data directory is created for bad flags');

  # A fresh directory is bootstrapped as n1 of a three-member cluster,
  # which then serves (its peers need not be up for that).
  $dd = "$tmp/member";
  my $p1 = GRTest::_free_port();
  my @peer1 = ('--peer-listen', "127.0.0.1:$p1");
  my @three1 = ('--initial-cluster',
                "n1=127.0.0.1:$p1,n2=127.0.0.1:7002,n3=127.0.0.1:7003");
  runs(['--data-dir', $dd, '--node-id', 'n1', @peer1, @three1,
        '--verbose', 'NOTICE'],
       qr/bootstrapped node n1 .* of cluster gearraft: .*n2=127\.0\.0\.1:7002.*\n.*serving on/s,
       'a fresh directory is bootstrapped, and the member serves');
  refused(['--data-dir', $dd, '--node-id', 'n2', @peer, @three],
          qr/the data is member 'n1' .* of cluster 'gearraft', not node id \d+ \(--node-id n2\)/,
          'the directory refuses another --node-id');
  runs(['--data-dir', $dd, '--node-id', 'n1', @peer1,
        '--initial-cluster', "n1=127.0.0.1:$p1", '--verbose', 'NOTICE'],
       qr/--initial-cluster ignored.*restarting node n1 .*: .*n3=127\.0\.0\.1:7003.*\n.*serving on/s,
       'a later --initial-cluster is ignored: the stored members stay');
  refused(['--data-dir', $dd, '--node-id', 'n1', @peer, '--cluster-name', 'other'],
          qr/cluster is 'gearraft', not 'other'/, 'the directory refuses another cluster name');
  refused(['--data-dir', $dd], qr/not a one-node server's/,
          'the one-node default refuses a member\'s directory');
  refused(['--data-dir', "$tmp/fresh", '--node-id', 'n1', @peer],
          qr/bootstrapped only with the cluster's initial members/,
          'a fresh directory needs --initial-cluster');

  # A one-node server's directory is not a member's.
  my $one = start_server(args => ['--cluster-name', 'solo']);
  my $c = $one->conn;
  like($c->submit(SUBMIT_JOB_BG, 'f', '', 'x'), qr/\AH:solo:\d+\z/,
       '--cluster-name names the handles of a one-node server');
  $one->stop(20);
  refused(['--data-dir', $one->datadir, '--node-id', 'n1', @peer, @three],
          qr/the data is a one-node server's/, 'a member refuses a one-node directory');
  refused(['--data-dir', $one->datadir, '--cluster-name', 'other'],
          qr/cluster is 'solo', not 'other'/, 'and the one-node server another cluster name');

  # --config: lines of long flag names; the command line wins.
  my $conf = "$tmp/bad.conf";
  open my $fh, '>', $conf or die;
  print $fh "# gearraftd\nport = 4730\nno-such-flag = 1\n";
  close $fh;
  refused(['--config', $conf], qr/\Q$conf\E:3: unknown flag 'no-such-flag'/,
          'a bad --config line: exit 2, naming file and line');
  refused(['--config', "$tmp/missing.conf"], qr/missing\.conf: No such file/,
          'a missing --config file');

  $conf = "$tmp/good.conf";
  open $fh, '>', $conf or die;
  print $fh "# the harness's --port and --verbose come after, and win\n",
            "port = 1\nverbose = NOTICE\n",
            "max-packet-size = 1024   # bytes\n";
  close $fh;
  my $srv = start_server(args => ['--config', $conf, '--verbose', 'WARNING']);
  is($srv->admin('verbose'), "OK WARNING\n", '--config: the command line overrides the file');
  my $big = $srv->conn;
  $big->send_pkt(SUBMIT_JOB_BG, 'cf', '', 'y' x 2000);
  my $e = $big->read_pkt(5);
  is($e && $e->{name}, 'ERROR', '--config: a flag only the file sets is applied');
}

done_testing();
