# SPDX-License-Identifier: BSD-3-Clause
# gearmand's command-line flags that gearraftd shares: --pid-file,
# --log-file, --verbose, --job-retries (07), --exceptions (02); SIGTERM
# ends the server cleanly; gearraftd's --max-packet-size refuses oversize
# packets with ERROR and closes only that connection.
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

done_testing();
