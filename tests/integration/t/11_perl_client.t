# SPDX-License-Identifier: BSD-3-Clause
# Perl's Gearman::Client and Gearman::Worker (Debian libgearman-client-perl)
# against the server: do_task, task sets with priorities and callbacks,
# status and data forwarding, failures and exceptions, background jobs and
# get_status, unique coalescing, admin status through the client.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use POSIX ();

BEGIN {
  eval { require Gearman::Client; require Gearman::Worker; 1 }
    or plan(skip_all => 'Gearman::Client not installed (libgearman-client-perl)');
}

my $srv = start_server();
our $addr = $srv->addr;
my @kids;

# A Gearman::Worker in a child process. It stops when the parent's pipe
# closes or after the job "quit".
sub start_worker {
  my (%funcs) = @_;
  my $pid = fork() // die;
  if ($pid == 0) {
    my $w = Gearman::Worker->new(job_servers => [$addr]);
    my $quit = 0;
    for my $f (keys %funcs) {
      $w->register_function($f => $funcs{$f});
    }
    $w->register_function(quit => sub { $quit = 1; return 'bye' });
    # Gearman::Worker croaks on an ERROR packet; never let the child
    # return into the test script.
    my $ok = eval { $w->work(stop_if => sub { $quit }); 1 };
    POSIX::_exit($ok ? 0 : 3);
  }
  push @kids, $pid;
  return $pid;
}

END { local $?; kill "KILL", @kids if @kids; waitpid($_, 0) for @kids; }

my $client = Gearman::Client->new(job_servers => [$addr]);

# --- background jobs and get_status before any worker exists --------------
my $bgh = $client->dispatch_background('p_rev', 'background data', { uniq => 'bgu' });
ok($bgh, 'dispatch_background returns a handle');
my $st = $client->get_status($bgh);
ok($st && $st->known, 'get_status: known');
ok($st && !$st->running, 'get_status: not running');
is_deeply($client->get_job_server_status->{$addr}{p_rev},
          { queued => 1, running => 0, capable => 0 },
          'get_job_server_status (admin "status"): 1 queued, 0 running, 0 capable');
is($client->dispatch_background('p_rev', 'other data', { uniq => 'bgu' }), $bgh,
   'dispatch_background with the same uniq: the same handle');

# --- a worker with several functions --------------------------------------
my $done_file = $srv->dir . '/perl-bg-done';
my $main_worker = start_worker(
  p_rev => sub {
    my $job = shift;
    my $r = reverse $job->arg;
    if ($job->arg eq 'background data') {
      open my $fh, '>', $done_file; print $fh $r; close $fh;
    }
    return $r;
  },
  p_status => sub {
    my $job = shift;
    $job->set_status(1, 4);
    $job->set_status(4, 4);
    return 'statused';
  },
  p_undef => sub { return undef },
);
ok(wait_until(sub { -s $done_file }, 10), 'the queued background job ran on the new worker');
open my $fh, '<', $done_file;
is(scalar <$fh>, 'atad dnuorgkcab', 'background job payload reached the worker once (coalesced)');

my $r = $client->do_task('p_rev', 'hello');
is(ref $r, 'SCALAR', 'do_task returns a scalar ref');
is($$r, 'olleh', 'do_task: worker result');
$r = $client->do_task('p_rev', "bin\0ary");
is($$r, "yra\0nib", 'do_task: NUL bytes round trip');
$r = $client->do_task('p_rev', 'x' x 100_000);
is(length $$r, 100_000, 'do_task: 100 kB payload');

my @status;
$r = $client->do_task('p_status', '', { on_status => sub { push @status, "$_[0]/$_[1]" } });
is($$r, 'statused', 'do_task with status updates completes');
is_deeply(\@status, ['1/4', '4/4'], 'on_status saw WORK_STATUS 1/4 then 4/4');

my $failed = 0;
$r = $client->do_task('p_undef', '', { on_fail => sub { $failed++ } });
ok(!defined $r, 'do_task on a worker returning undef (WORK_FAIL) returns undef');
is($failed, 1, 'on_fail called once');

# --- task set: priorities, callbacks, many in flight ---------------------
{
  my $ts = $client->new_task_set;
  my %res;
  for my $i (1 .. 20) {
    $ts->add_task('p_rev', "job$i",
                  { on_complete => sub { $res{$i} = ${ $_[0] } },
                    priority => ($i % 3 == 0 ? 'high' : $i % 3 == 1 ? 'low' : 'normal') });
  }
  $ts->wait(timeout => deadline_secs(20));
  is_deeply(\%res, { map { $_ => scalar reverse("job$_") } 1 .. 20 },
            'task set of 20 (mixed priorities): every result matched to its task');
}

# Two clients, one uniq, one execution: both get the result.
{
  my $ts = $client->new_task_set;
  my @got;
  $ts->add_task('p_rev', 'same', { uniq => 'shared', on_complete => sub { push @got, ${ $_[0] } } });
  $ts->add_task('p_rev', 'same', { uniq => 'shared', on_complete => sub { push @got, ${ $_[0] } } });
  $ts->wait(timeout => deadline_secs(20));
  is_deeply(\@got, ['emas', 'emas'], 'two tasks with one uniq both complete');
}

is_deeply($client->get_job_server_status->{$addr}{p_rev},
          { queued => 0, running => 0, capable => 1 },
          'status after the work: 0 queued, 0 running, 1 capable');

# Exceptions: a client that asked for them gets the exception text.
# A dying job makes Gearman::Worker 2.004 send WORK_EXCEPTION then WORK_FAIL;
# the server answers the second with ERROR JOB_NOT_FOUND and that worker
# process croaks. So each dying-job case gets its own server and worker.
my $srv2 = start_server();
{
  local $addr = $srv2->addr;
  start_worker(p_die => sub { die "worker died\n" });
}
my $xclient = Gearman::Client->new(job_servers => [$srv2->addr], exceptions => 1);
my ($exc, $xfail) = (undef, 0);
$r = $xclient->do_task('p_die', '', { on_exception => sub { $exc = shift },
                                       on_fail => sub { $xfail++ } });
like($exc // '', qr/worker died/, 'exceptions => 1: on_exception gets the die message');

# A dying Gearman::Worker sends WORK_EXCEPTION, and a client without the
# exceptions option gets it as a WORK_FAIL. gearmand 1.1.20 keeps a NUL
# after the handle in that WORK_FAIL, so Gearman::Client does not find its
# task and croaks; gearraftd sends the handle alone and the task fails.
my $dsrv = start_server();
my $dclient;
{
  local $addr = $dsrv->addr;
  start_worker(p_die => sub { die "worker died\n" });
  $dclient = Gearman::Client->new(job_servers => [$addr]);
}
$failed = 0;
$r = eval { $dclient->do_task('p_die', '', { on_fail => sub { $failed++ } }) };
my $err = $@;
if (is_gearmand()) {
  like($err, qr/work_fail for unknown handle/,
       'gearmand: Gearman::Client croaks on the converted WORK_FAIL (trailing NUL)');
} else {
  is($err, '', 'the converted WORK_FAIL: do_task returns without croaking');
  ok(!defined $r, 'do_task returns undef for the failed task');
  is($failed, 1, 'on_fail is called once');
}
ok($dsrv->external || $dsrv->alive, 'the server is still running');

$client = Gearman::Client->new(job_servers => [$addr]);
$r = $client->do_task('quit', '');
is($$r, 'bye', 'worker told to quit');
is(waitpid($main_worker, 0), $main_worker, 'the worker process exited after "quit"');
@kids = grep { $_ != $main_worker } @kids;
done_testing();
