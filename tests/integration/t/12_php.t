# SPDX-License-Identifier: BSD-3-Clause
# PHP's gearman extension (Debian php-gearman, on libgearman) against the
# server: php-cli scripts in ../php/ run as client and worker; this test
# drives them and compares what they print.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use POSIX ();

my $PHP = 'php';
my $have = `$PHP -r 'echo extension_loaded("gearman") ? "yes" : "no";' 2>/dev/null`;
plan(skip_all => 'php-cli with the gearman extension not installed') unless ($have // '') eq 'yes';

my $srv = start_server();
my ($H, $P) = ($srv->host, $srv->port);
my $dir = "$FindBin::Bin/../php";
my $log = $srv->dir . '/php.log';
$ENV{PHP_LOG} = $log;

sub client {
  my ($mode) = @_;
  my $out = `timeout -k 2 30 $PHP $dir/client.php $H $P $mode 2>&1`;
  return ($? >> 8, $out);
}

my @workers;
sub start_worker {
  my ($count) = @_;
  my $pid = fork() // die;
  if ($pid == 0) {
    { exec('timeout', '-k', '2', '60', $PHP, "$dir/worker.php", $H, $P, $count); }
    POSIX::_exit(127);
  }
  push @workers, $pid;
  return $pid;
}
END { local $?; kill 'KILL', @workers; waitpid($_, 0) for @workers; }

# Background submissions and jobStatus first, with no worker yet.
my ($rc, $out) = client('background');
is($rc, 0, 'php background client exits 0');
my ($h, $hh, $hl) = $out =~ /^handles (\S+) (\S+) (\S+)$/m;
is(join("\n", grep { !/^handles/ } split /\n/, $out) . "\n",
   "bg rc SUCCESS\nstatus known=1 running=0 0/0\nunknown known=0\n",
   'doBackground: SUCCESS; jobStatus known, not running; unknown handle not known');
ok($h && $hh && $hl, 'three handles returned');
is_deeply($srv->prioritystatus->{php_log}, [1, 1, 1, 0],
          'doBackground / doHighBackground / doLowBackground: one per priority');

my $w = start_worker(3 + 4 + 1 + 1 + 1 + 1 + 10);
ok(wait_until(sub { -s $log && (() = do { local @ARGV = ($log); <> }) == 3 }, 15),
   'the PHP worker ran the three background jobs');
open my $fh, '<', $log or die;
is(join('', <$fh>), "bg-high\nbg-normal\nbg-low\n", 'in priority order');

($rc, $out) = client('do');
is($out, "normal HELLO SUCCESS\nhigh HIGH\nlow LOW\nbinary 410042\n",
   'doNormal / doHigh / doLow results; NUL bytes round trip');

($rc, $out) = client('progress');
is($out, "status 1/3\ndata part1\nwarning warn1\nstatus 3/3\ncomplete finished:uniq-p\nrc SUCCESS\n",
   'status, data, warning callbacks in order, then complete with the unique');

($rc, $out) = client('fail');
is($out, "fail rc WORK_FAIL\n", 'sendFail: client sees GEARMAN_WORK_FAIL');

($rc, $out) = client('exception');
# libgearman asks for the exceptions option, so the exception text arrives.
is($out, "exception php exception text\n", 'sendException: exception callback gets the text (no fail callback)');

# A worker that throws, a client that sets no exception callback: the
# PHP extension asks for the exceptions option on every connection, so
# the client gets the WORK_EXCEPTION itself and doNormal fails at once.
($rc, $out) = client('exception_do');
is($out, "exception_do rc WORK_EXCEPTION\n", 'sendException, doNormal without callbacks: GEARMAN_WORK_EXCEPTION at once');

($rc, $out) = client('tasks');
is($out, join(' ', sort map { "u$_=T$_" } 1 .. 10) . "\n", '10 concurrent tasks, each result with its unique');

($rc, $out) = client('ping');
is($out, "ping ok\n", 'ping (ECHO)');

waitpid($w, 0);
is($? >> 8, 0, 'the PHP worker exited 0 after its job count');
@workers = ();
done_testing();
