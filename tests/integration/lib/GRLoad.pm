# SPDX-License-Identifier: BSD-3-Clause
#
# tests/integration/lib/GRLoad.pm - load and history check for the fault
# tests (t/33_* onwards).
#
# A test starts a cluster (GRTest::start_cluster), then submitters and
# workers here, each a forked process connected to one node at a time:
# our own raw-protocol ones, and wrappers around the real clients (the
# `gearman` CLI, Perl's Gearman::Client and Gearman::Worker, PHP's gearman
# extension through php/fault_*.php). While they run, the test does harm
# to nodes through this object (kill, stop, ...), which notes every fault
# with its node and time. At the end finish() lets the submitters finish,
# waits for the queue to drain and stops the workers; check() reads what
# every process recorded and asserts the history.
#
# What is recorded (one file per process in the load directory, one line
# per event, appended with single writes, times from Time::HiRes::time):
#   S key attempt node time          a submission sent
#   A key attempt node handle time   its JOB_CREATED (acknowledged)
#   E key attempt node time why      no acknowledgment (lost connection,
#                                    ERROR, timeout): sent again elsewhere
#   H payload handle node time wid   a job handed to worker wid
#   W wid node time                  a real-client worker process killed
#                                    by its time limit (it may have held a job)
# Each logical job has a key, sent as the unique so that a submission sent
# again coalesces with the first one while it is queued; its payload is
# "key:attempt", so a run tells which attempt made the job.
#
# The history check (docs: tests/integration/README.md, "History check"):
#   - every acknowledged key was handed out (and, since the queue drained,
#     completed) at least once: zero acknowledged jobs lost;
#   - nothing was handed out that was not sent;
#   - an acknowledged handle names a job of its own key;
#   - a job (payload) handed out again is allowed only when the worker
#     that had it before was on a node that was killed, stopped or cut
#     off in between (or was a real-client worker killed by its time
#     limit), or when the later handout came from a node inside a fault
#     window (a stale answer while it catches up); such duplicates are
#     counted and reported;
#   - a key that ran under two attempts was sent again because an earlier
#     attempt was not acknowledged; counted and reported.
#
# Not here: starting nodes (GRTest), cutting links (GRProxy).
package GRLoad;

use strict;
use warnings;

use File::Path ();
use File::Temp ();
use IO::Handle;
use POSIX ();
use Time::HiRes ();
use Test::More ();

use GRTest;

my $RESP_SECS = 6;      # a connection silent this long is given up
my $FINISH_SECS = 40;   # after stop, submitters keep resending this long
# The PHP clients, next to this library (tests/integration/php).
my $PHP_DIR;
BEGIN {
  require File::Basename;
  require File::Spec;
  $PHP_DIR = File::Spec->rel2abs(File::Basename::dirname(__FILE__) . '/../php');
}

my @ALL;        # every load object, for the END cleanup
# Where notes go: the test's output, or a drill's progress lines.
our $SAY = sub { Test::More::note(@_) };
our $KEEP;    # keep the records at exit (a drill that failed)
my $OWNER = $$;

# Which real clients this machine has.
sub have {
  my ($kind) = @_;
  return 1 if $kind eq 'raw';
  if ($kind eq 'cli') {
    return scalar grep { -x "$_/gearman" } split /:/, $ENV{PATH} // '';
  }
  if ($kind eq 'perl') {
    return eval { require Gearman::Client; require Gearman::Worker; 1 } ? 1 : 0;
  }
  if ($kind eq 'php') {
    my $y = `php -r 'echo extension_loaded("gearman") ? "yes" : "no";' 2>/dev/null`;
    return ($y // '') eq 'yes';
  }
  return 0;
}

# GRLoad->new(nodes => [GRTest::Server ...], func => NAME) -> load object.
sub new {
  my ($class, %o) = @_;
  # Kept when the test fails (END below), to read what happened.
  my $dir = File::Temp::tempdir('gr-load-XXXXXX', TMPDIR => 1, CLEANUP => 0);
  my $self = bless { nodes => $o{nodes}, func => $o{func} // 'fault',
                     dir => $dir, kids => [], faults => [], off => {},
                     n_acked => 0, next_id => 0, t0 => _now(), parent => $$ }, $class;
  push @ALL, $self;
  Test::More::note("load records in $dir") if $ENV{GR_KEEP_TMP};
  return $self;
}

sub dir { $_[0]{dir} }
sub faults { @{ $_[0]{faults} } }    # every fault window so far, in order
sub nodes { @{ $_[0]{nodes} } }

END {
  local $?;    # waitpid below must not become the test's exit status
  if ($$ == $OWNER) {
    for my $l (@ALL) {
      for my $k (@{ $l->{kids} }) {
        next unless $k->{pid};
        kill 'KILL', -$k->{pid}, $k->{pid};
        waitpid($k->{pid}, 0);
      }
      if ($ENV{GR_KEEP_TMP} || $KEEP || !Test::More->builder->is_passing) {
        print STDERR "# load records kept in $l->{dir}\n";
      } else {
        File::Path::remove_tree($l->{dir});
      }
    }
  }
}

sub _now { return Time::HiRes::time(); }
sub _ts { return sprintf('%.6f', _now()); }

# ---------------------------------------------------------------------------
# Faults: every harm done to a node is a window [begin, end] on that node.

# fault_begin($k, $what): node $k (0-based) is harmed from now on.
sub fault_begin {
  my ($self, $k, $what) = @_;
  push @{ $self->{faults} }, { node => $k, what => $what, t0 => _now() };
}

# fault_effective($k): the harm to node $k has surely taken effect (the
# command that does it returned); a drill measures failover from here.
sub fault_effective {
  my ($self, $k) = @_;
  $_->{t_eff} //= _now() for grep { $_->{node} == $k && !defined $_->{t1} } @{ $self->{faults} };
}

# fault_end($k): the harm to node $k is over (restarted, continued, healed).
sub fault_end {
  my ($self, $k) = @_;
  $_->{t1} //= _now() for grep { $_->{node} == $k } @{ $self->{faults} };
}

sub faulted_now {
  my ($self, $k) = @_;
  return scalar grep { $_->{node} == $k && !defined $_->{t1} } @{ $self->{faults} };
}

sub _stopped {
  my ($self, $k) = @_;
  return scalar grep { $_->{node} == $k && $_->{what} eq 'stop' && !defined $_->{t1}
                       && !$_->{resumed} } @{ $self->{faults} };
}

# SIGKILL node $k; restart() brings it back on its port and data dir.
sub kill_node {
  my ($self, $k) = @_;
  $self->fault_begin($k, 'kill');
  $self->{nodes}[$k]->kill('KILL');
  $self->fault_effective($k);
}

sub restart {
  my ($self, $k) = @_;
  $self->{nodes}[$k]->start_again;
  $self->fault_end($k);
}

# SIGSTOP node $k; cont() lets it go on and returns caught_up($k): the
# fault ends once the node has caught up, because until then it applies
# entries from before the cluster declared it gone (a GRAB it answers
# with a JOB_ASSIGN that a later entry revokes).
sub stop_node {
  my ($self, $k) = @_;
  $self->fault_begin($k, 'stop');
  $self->{nodes}[$k]->kill('STOP');
  $self->fault_effective($k);
}

sub cont {
  my ($self, $k) = @_;
  $_->{resumed} = 1 for grep { $_->{node} == $k && $_->{what} eq 'stop' } @{ $self->{faults} };
  $self->{nodes}[$k]->kill('CONT');
  my $ok = $self->caught_up($k);
  $self->fault_end($k);
  return $ok;
}

# ---------------------------------------------------------------------------
# The cluster as the test sees it.

# leader(%o) -> the 0-based index of the node that leads, as soon as one
# node says it leads and a majority of the nodes asked (itself included)
# name it in the same term; undef after timeout seconds. Stopped nodes
# and those in exclude => [...] are not asked.
sub leader {
  my ($self, %o) = @_;
  my %skip = map { $_ => 1 } @{ $o{exclude} || [] };
  my @n = @{ $self->{nodes} };
  my $found = GRTest::wait_until(sub {
    my @v;
    for my $k (0 .. $#n) {
      next if $skip{$k} || $self->_stopped($k) || !$n[$k]->alive;
      my $x = eval { $n[$k]->cluster };
      $v[$k] = $x if $x;
    }
    my @lead = sort { $v[$b]{node}{term} <=> $v[$a]{node}{term} }
               grep { $v[$_] && $v[$_]{node}{role} eq 'leader' } 0 .. $#n;
    return undef unless @lead;
    my $l = $lead[0];
    my ($name, $term) = ($n[$l]{name}, $v[$l]{node}{term});
    my $agree = grep { $v[$_] && $v[$_]{node}{leader} eq $name &&
                       $v[$_]{node}{term} == $term } 0 .. $#n;
    return $agree > @n / 2 ? $l + 1 : undef;
  }, $o{timeout} // 20);
  return $found ? $found - 1 : undef;
}

# caught_up($k, %o): true once node $k follows the leader (same leader
# and term) and has applied what the leader had committed when asked;
# false after timeout seconds.
sub caught_up {
  my ($self, $k, %o) = @_;
  my $n = $self->{nodes};
  my $want;
  return GRTest::wait_until(sub {
    my $l = $self->leader(timeout => 2);
    return 0 unless defined $l;
    my $lv = eval { $n->[$l]->cluster } or return 0;
    $want //= $lv->{node}{commit};
    my $v = $k == $l ? $lv : eval { $n->[$k]->cluster } or return 0;
    return $v->{node}{leader} eq $n->[$l]{name} && $v->{node}{term} == $lv->{node}{term}
        && $v->{node}{applied} >= $want;
  }, $o{timeout} // 30);
}

# acked() -> how many acknowledgments the submitters have recorded so far.
sub acked {
  my ($self) = @_;
  for my $f (glob "$self->{dir}/sub-*.log") {
    open my $fh, '<', $f or next;
    seek($fh, $self->{off}{$f} // 0, 0);
    while (my $l = <$fh>) {
      last unless $l =~ /\n\z/;    # a line still being written
      $self->{off}{$f} += length $l;
      $self->{n_acked}++ if $l =~ /\AA /;
    }
  }
  return $self->{n_acked};
}

# wait_acked($more, $timeout): true once $more acknowledgments more than
# now were recorded (progress under the current configuration).
sub wait_acked {
  my ($self, $more, $timeout) = @_;
  my $want = $self->acked + $more;
  return GRTest::wait_until(sub { $self->acked >= $want }, $timeout // 30);
}

# ---------------------------------------------------------------------------
# Processes

# submitter(kind => raw|cli|perl|php, home => k, rate => jobs/s,
#           window => n (raw: pipelined submissions in flight)).
# worker(kind => raw|cli|perl|php, home => k, hold => ms (raw: time a job
#        is held before WORK_COMPLETE)).
# Each starts at node `home` and, when that node fails it, goes on with
# the next one; a kind this machine lacks runs as raw instead (noted).
sub submitter { my ($self, %o) = @_; return $self->_start('sub', %o); }
sub worker { my ($self, %o) = @_; return $self->_start('work', %o); }

sub _start {
  my ($self, $role, %o) = @_;
  my $kind = $o{kind} // 'raw';
  if (!have($kind)) {
    $SAY->("no $kind client here: a raw $role instead");
    $kind = 'raw';
  }
  my $id = sprintf('%s%s%d', $role eq 'sub' ? 's' : 'w', substr($kind, 0, 2),
                   ++$self->{next_id});
  my $log = "$self->{dir}/$role-$kind-$id.log";
  my $pid = fork() // die "fork: $!";
  if ($pid == 0) {
    # A group of its own: killing it takes the real clients it runs too.
    POSIX::setpgid(0, 0);
    $SIG{PIPE} = 'IGNORE';
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    srand($$ ^ int(_now() * 1000));
    open my $fh, '>>', $log or POSIX::_exit(3);
    $fh->autoflush(1);
    my %a = (%o, id => $id, log => $log, fh => $fh, home => $o{home} // 0);
    my $code = $self->can("_${role}_$kind");
    my $ok = eval { $code->($self, %a); 1 };
    syswrite($fh, "# died: $@\n") unless $ok;
    POSIX::_exit($ok ? 0 : 3);
  }
  POSIX::setpgid($pid, $pid);    # both sides, to avoid a race
  push @{ $self->{kids} }, { pid => $pid, role => $role, kind => $kind, id => $id };
  return $id;
}

sub _rec {
  my ($fh, @f) = @_;
  syswrite($fh, join(' ', @f) . "\n");
}

# Told to stop, or orphaned: the process that started it is gone (a
# test or drill killed by a signal), and nobody would ever tell it.
sub _stopping {
  my ($self, $what) = @_;
  return -e "$self->{dir}/stop-$what" || getppid() != $self->{parent};
}

sub _pause { select(undef, undef, undef, $_[0]); }

sub _next { my ($self, $k) = @_; return ($k + 1) % @{ $self->{nodes} }; }

# A rate limit shared by the submitters: true when one more submission
# fits in rate per second since $t0.
sub _due {
  my ($rate, $t0, $n) = @_;
  return 1 unless $rate;
  return $n < ($rate * (_now() - $t0)) + 1;
}

# The next submission of a submitter: one to send again (attempt + 1),
# or a new key while not stopping and the rate allows; undef otherwise.
sub _take {
  my ($st, $stopping, $rate) = @_;
  if (@{ $st->{retry} }) {
    my $j = shift @{ $st->{retry} };
    $j->[1]++;
    return $j;
  }
  return undef if $stopping || !_due($rate, $st->{t0}, $st->{seq});
  return [sprintf('%s-%06d', $st->{id}, $st->{seq}++), 1];
}

# The loop every submitter kind shares: $send->($k, \@jobs) sends a batch
# to node $k and returns the jobs it got no acknowledgment for (after
# recording S, A and E lines); a failure moves on to the next node. Stops
# when told and nothing is left to send, or $FINISH_SECS after being told.
sub _sub_loop {
  my ($self, %a) = @_;
  my $st = { id => $a{id}, seq => 0, retry => [], t0 => _now() };
  my $k = $a{home};
  my $give_up;
  while (1) {
    my $stopping = $self->_stopping('submit');
    $give_up //= _now() + $FINISH_SECS if $stopping;
    my @jobs;
    while (@jobs < ($a{batch} // 1)) {
      my $j = _take($st, $stopping, $a{rate}) or last;
      push @jobs, $j;
    }
    if (!@jobs) {
      last if $stopping;
      _pause(0.01);
      next;
    }
    if ($give_up && _now() > $give_up) {
      _rec($a{fh}, 'E', @$_, $k, _ts(), 'gave-up') for @jobs;
      last;
    }
    my @left = $a{send}->($k, \@jobs);
    if (@left) {
      push @{ $st->{retry} }, @left;
      $k = $self->_next($k);
      _pause(0.05);
    }
  }
}

# Our own submitter: pipelines up to `window` background submissions on
# one connection (JOB_CREATED answers them in order).
sub _sub_raw {
  my ($self, %a) = @_;
  my $st = { id => $a{id}, seq => 0, retry => [], t0 => _now() };
  my $window = $a{window} // 4;
  my $k = $a{home};
  my ($c, @pending, $heard, $give_up);
  my $lost = sub {
    my ($why) = @_;
    _rec($a{fh}, 'E', @$_, $k, _ts(), $why) for @pending;
    push @{ $st->{retry} }, @pending;
    @pending = ();
    $c->close if $c;
    undef $c;
    $k = $self->_next($k);
  };
  while (1) {
    my $stopping = $self->_stopping('submit');
    $give_up //= _now() + $FINISH_SECS if $stopping;
    last if $stopping && !@pending && !@{ $st->{retry} };
    if ($give_up && _now() > $give_up) {
      _rec($a{fh}, 'E', @$_, $k, _ts(), 'gave-up') for @pending, @{ $st->{retry} };
      last;
    }
    if (!$c) {
      $c = eval { $self->{nodes}[$k]->conn };
      if (!$c) {
        $k = $self->_next($k);
        _pause(0.05);
        next;
      }
      $heard = _now();
    }
    my $batch = '';
    while (@pending < $window) {
      my $j = _take($st, $stopping, $a{rate}) or last;
      _rec($a{fh}, 'S', @$j, $k, _ts());
      $batch .= GRTest::Conn::encode(SUBMIT_JOB_BG, $self->{func}, $j->[0],
                                     "$j->[0]:$j->[1]");
      push @pending, $j;
    }
    if (length $batch && !eval { $c->send_raw($batch); 1 }) {
      $lost->('write');
      next;
    }
    if (!@pending) {
      _pause(0.01);
      next;
    }
    my $p = $c->read_pkt(0.2);
    if (!$p) {
      $lost->('timeout') if _now() - $heard > $RESP_SECS;
      next;
    }
    if ($p->{eof}) {
      $lost->('eof');
      next;
    }
    $heard = _now();
    my $j = shift @pending;
    if ($p->{type} == JOB_CREATED) {
      _rec($a{fh}, 'A', @$j, $k, $p->{data}, _ts());
    } else {
      _rec($a{fh}, 'E', @$j, $k, _ts(), $p->{name});
      push @{ $st->{retry} }, $j;
    }
  }
  $c->close if $c;
}

# Runs @cmd with stdin and stderr on /dev/null; returns its stdout and
# exit status.
sub _capture {
  my (@cmd) = @_;
  my $pid = open(my $fh, '-|') // die "fork: $!";
  if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDERR, '>', '/dev/null';
    { exec @cmd; }
    POSIX::_exit(127);
  }
  local $/;
  my $out = <$fh> // '';
  close $fh;
  return ($out, $? >> 8);
}

# The gearman CLI in client mode, one job per run: `-v` prints the handle
# of an acknowledged background job (its exit status is 0 either way).
sub _sub_cli {
  my ($self, %a) = @_;
  $self->_sub_loop(%a, batch => 1, send => sub {
    my ($k, $jobs) = @_;
    my ($key, $att) = @{ $jobs->[0] };
    my $n = $self->{nodes}[$k];
    _rec($a{fh}, 'S', $key, $att, $k, _ts());
    my ($out) = _capture('timeout', '-k', '1', '20', 'gearman', '-v',
                         '-h', $n->host, '-p', $n->port, '-t', $RESP_SECS * 1000,
                         '-b', '-f', $self->{func}, '-u', $key, '--', "$key:$att");
    if ($out =~ /^Task created: (\S+)/m) {
      _rec($a{fh}, 'A', $key, $att, $k, $1, _ts());
      return ();
    }
    _rec($a{fh}, 'E', $key, $att, $k, _ts(), 'cli');
    return @$jobs;
  });
}

# Perl's Gearman::Client, one client object per node tried.
sub _sub_perl {
  my ($self, %a) = @_;
  require Gearman::Client;
  my %client;
  $self->_sub_loop(%a, batch => 1, send => sub {
    my ($k, $jobs) = @_;
    my ($key, $att) = @{ $jobs->[0] };
    $client{$k} //= Gearman::Client->new(job_servers => [$self->{nodes}[$k]->addr],
                                         command_timeout => $RESP_SECS);
    _rec($a{fh}, 'S', $key, $att, $k, _ts());
    my $h = eval { $client{$k}->dispatch_background($self->{func}, "$key:$att",
                                                    { uniq => $key }) };
    if ($h) {
      _rec($a{fh}, 'A', $key, $att, $k, $h, _ts());
      return ();
    }
    delete $client{$k};
    _rec($a{fh}, 'E', $key, $att, $k, _ts(), 'perl');
    return @$jobs;
  });
}

# PHP's gearman extension: php/fault_client.php submits a batch in order
# and prints "A payload handle" for each acknowledgment, stopping at the
# first failure.
sub _sub_php {
  my ($self, %a) = @_;
  $self->_sub_loop(%a, batch => 8, send => sub {
    my ($k, $jobs) = @_;
    my $n = $self->{nodes}[$k];
    _rec($a{fh}, 'S', @$_, $k, _ts()) for @$jobs;
    my ($out) = _capture('timeout', '-k', '1', '30', 'php', "$PHP_DIR/fault_client.php",
                         $n->host, $n->port, $RESP_SECS * 1000, $self->{func},
                         map { "$_->[0]:$_->[1]" } @$jobs);
    my %h = $out =~ /^A (\S+) (\S+)$/mg;
    my @left;
    for my $j (@$jobs) {
      if (my $h = $h{"$j->[0]:$j->[1]"}) {
        _rec($a{fh}, 'A', @$j, $k, $h, _ts());
      } else {
        _rec($a{fh}, 'E', @$j, $k, _ts(), 'php');
        push @left, $j;
      }
    }
    return @left;
  });
}

# Our own worker: GRAB_JOB, record, WORK_COMPLETE; PRE_SLEEP when there
# is nothing, and a GRAB again on NOOP (or after a second asleep).
sub _work_raw {
  my ($self, %a) = @_;
  my $k = $a{home};
  my ($c, $state, $since);
  my $func = $self->{func};
  my $lost = sub {
    $c->close if $c;
    undef $c;
    $k = $self->_next($k);
  };
  my $grab = sub {
    $c->send_pkt(GRAB_JOB);
    ($state, $since) = ('grab', _now());
  };
  until ($self->_stopping('work')) {
    if (!$c) {
      $c = eval { $self->{nodes}[$k]->conn };
      if (!$c || !eval { $c->can_do($func); $grab->(); 1 }) {
        undef $c;
        $k = $self->_next($k);
        _pause(0.05);
        next;
      }
    }
    my $p = $c->read_pkt(0.2);
    if (!$p) {
      if ($state eq 'sleep' && _now() - $since > 1) {
        $lost->() unless eval { $grab->(); 1 };
      } elsif ($state eq 'grab' && _now() - $since > $RESP_SECS) {
        $lost->();
      }
      next;
    }
    if ($p->{eof}) {
      $lost->();
      next;
    }
    my $ok = eval {
      if ($p->{type} == JOB_ASSIGN) {
        my ($h, undef, $payload) = @{ $p->{args} };
        _rec($a{fh}, 'H', $payload, $h, $k, _ts(), $a{id});
        _pause($a{hold} / 1000) if $a{hold};
        $c->send_pkt(WORK_COMPLETE, $h, '');
        $grab->();
      } elsif ($p->{type} == NO_JOB) {
        $c->send_pkt(PRE_SLEEP);
        ($state, $since) = ('sleep', _now());
      } elsif ($p->{type} == NOOP && $state eq 'sleep') {
        $grab->();
      }
      1;
    };
    $lost->() unless $ok;
  }
  $c->close if $c;
}

# Perl's Gearman::Worker on one node (it reconnects to it by itself).
sub _work_perl {
  my ($self, %a) = @_;
  require Gearman::Worker;
  my $k = $a{home};
  until ($self->_stopping('work')) {
    my $w = Gearman::Worker->new(job_servers => [$self->{nodes}[$k]->addr]);
    $w->register_function($self->{func} => sub {
      my ($job) = @_;
      _rec($a{fh}, 'H', $job->arg, $job->handle, $k, _ts(), $a{id});
      # Not empty: Gearman::Worker sends an empty result as WORK_COMPLETE
      # without the NUL after the handle, which no server completes.
      return 'done';
    });
    eval { $w->work(stop_if => sub { $self->_stopping('work') }); };
    _pause(0.1);
  }
}

# PHP's GearmanWorker (php/fault_worker.php), which writes its own H
# lines; run again on the next node whenever it exits early.
sub _work_php {
  my ($self, %a) = @_;
  my $k = $a{home};
  my $stop = "$self->{dir}/stop-work";
  until ($self->_stopping('work')) {
    my $n = $self->{nodes}[$k];
    my (undef, $rc) = _capture('timeout', '-k', '1', '60', 'php',
                               "$PHP_DIR/fault_worker.php", $n->host, $n->port,
                               $self->{func}, $a{log}, $k, $a{id}, $stop);
    _rec($a{fh}, 'W', $a{id}, $k, _ts()) if $rc == 124 || $rc == 137;
    $k = $self->_next($k) if $rc != 0;
    _pause(0.05) if $rc != 0;
  }
}

# The gearman CLI in worker mode: a shell per job appends the H line. Each
# run does up to 25 jobs and gives up when its server is silent for
# $RESP_SECS; the next run goes to the next node.
sub _work_cli {
  my ($self, %a) = @_;
  my $k = $a{home};
  my $sh = 'read -r p; echo "H $p - $1 $(date +%s.%N) $2" >> "$3"; echo done';
  until ($self->_stopping('work')) {
    my $n = $self->{nodes}[$k];
    my (undef, $rc) = _capture('timeout', '-k', '1', '60', 'gearman', '-w',
                               '-h', $n->host, '-p', $n->port, '-t', $RESP_SECS * 1000,
                               '-f', $self->{func}, '-c', 25, '--',
                               'sh', '-c', $sh, 'sh', $k, $a{id}, $a{log});
    _rec($a{fh}, 'W', $a{id}, $k, _ts()) if $rc == 124 || $rc == 137;
    $k = $self->_next($k);
  }
}

# ---------------------------------------------------------------------------
# The end

sub _touch {
  my ($self, $what) = @_;
  open my $fh, '>', "$self->{dir}/stop-$what" or die "stop-$what: $!";
  close $fh;
}

sub _reap {
  my ($self, $role, $secs) = @_;
  my @k = grep { $_->{role} eq $role && $_->{pid} } @{ $self->{kids} };
  GRTest::wait_until(sub {
    for my $k (@k) {
      delete $k->{pid} if $k->{pid} && waitpid($k->{pid}, POSIX::WNOHANG()) == $k->{pid};
    }
    return !grep { $_->{pid} } @k;
  }, $secs);
  my @left = grep { $_->{pid} } @k;
  for my $k (@left) {
    kill 'KILL', -$k->{pid}, $k->{pid};
    waitpid($k->{pid}, 0);
    delete $k->{pid};
  }
  return scalar @left;
}

# settle(%o) -> { left, drained, last, secs_submit, secs_drain }: the
# submitters stop taking new keys and finish (sending again what was not
# acknowledged, for up to $FINISH_SECS); then the queue must drain - the
# leader's `status` shows nothing queued or running for the function -
# within drain => secs (default 60); then the workers stop (those still
# running after work_grace => secs, default 15, are killed: a Perl worker
# asleep notices the stop only every 10 s). `left` counts
# submitters that had to be killed, `last` is the last status read. Every
# node must be serving by now.
sub settle {
  my ($self, %o) = @_;
  my $t0 = _now();
  $self->_touch('submit');
  my $left = $self->_reap('sub', $FINISH_SECS + 20);
  my $t1 = _now();
  my $last = '';
  my $drained = GRTest::wait_until(sub {
    my $l = $self->leader(timeout => 5);
    return 0 unless defined $l;
    my $st = eval { $self->{nodes}[$l]->status->{ $self->{func} } };
    $last = $st ? "$self->{nodes}[$l]{name}: @$st" : 'no status';
    return $st && $st->[0] == 0 && $st->[1] == 0;
  }, $o{drain} // 60);
  $self->_touch('work');
  $self->_reap('work', $o{work_grace} // 15);
  return { left => $left, drained => $drained ? 1 : 0, last => $last,
           secs_submit => $t1 - $t0, secs_drain => _now() - $t1 };
}

# finish(%o): settle(%o), asserting that the submitters finished by
# themselves and that the queue drained.
sub finish {
  my ($self, %o) = @_;
  my $r = $self->settle(%o);
  Test::More::is($r->{left}, 0, 'the submitters finished by themselves');
  Test::More::ok($r->{drained}, 'the queue drained: nothing queued or running')
    or Test::More::diag("last status (total running workers): $r->{last}");
  Test::More::note(sprintf('finish: submitters done in %.1f s, drained in %.1f s more, '
                           . '%.1f s since the load began', $r->{secs_submit},
                           $r->{secs_drain}, _now() - $self->{t0}));
  return $r->{drained};
}

# Reads every record: returns a hash of the history.
sub _history {
  my ($self) = @_;
  my %h = (sent => {}, acked => {}, handed => {}, killed => {}, keys => {},
           kind_acks => {}, kind_runs => {}, errors => 0, gave_up => 0);
  for my $f (glob "$self->{dir}/*.log") {
    my ($role, $kind) = $f =~ m{/(sub|work)-(\w+)-[^/]*\.log\z} or next;
    open my $fh, '<', $f or die "$f: $!";
    while (my $l = <$fh>) {
      chomp $l;
      my @f = split / /, $l;
      my $t = shift @f;
      if ($t eq 'S') {
        $h{sent}{"$f[0]:$f[1]"} = { node => $f[2], t => $f[3] };
        $h{keys}{ $f[0] } = 1;
      } elsif ($t eq 'A') {
        $h{acked}{ $f[0] } = { attempt => $f[1], node => $f[2], handle => $f[3],
                               t => $f[4], kind => $kind };
        $h{kind_acks}{$kind}++;
      } elsif ($t eq 'E') {
        $h{errors}++;
        $h{gave_up}++ if ($f[4] // '') eq 'gave-up';
      } elsif ($t eq 'H') {
        push @{ $h{handed}{ $f[0] } }, { handle => $f[1], node => $f[2],
                                         t => $f[3], wid => $f[4], kind => $kind };
        $h{kind_runs}{$kind}++;
      } elsif ($t eq 'W') {
        push @{ $h{killed}{ $f[0] } }, $f[2];
      }
    }
  }
  return \%h;
}

# Why the handout $e of a job may have been followed by another one at
# time $t: its node was harmed in between, or its worker was killed. A
# worker records a handout a little after the node sent it: a fault
# counts until a second after its end.
sub _why_again {
  my ($self, $h, $e, $t) = @_;
  for my $f (@{ $self->{faults} }) {
    next unless $f->{node} == $e->{node};
    return $f->{what} if $f->{t0} <= $t && ($f->{t1} // 9e9) + 1 >= $e->{t};
  }
  for my $kt (@{ $h->{killed}{ $e->{wid} } || [] }) {
    return 'worker killed' if $kt >= $e->{t} && $kt <= $t;
  }
  return undef;
}

# Why a handout $r may repeat one made before it: it came from a node
# inside a fault window - a node let go or healed applies, as it catches
# up, entries from before the cluster declared it gone, and answers a
# GRAB whose job was requeued since (it closes that connection once it
# applies its NODE_GONE).
sub _why_stale {
  my ($self, $r) = @_;
  for my $f (@{ $self->{faults} }) {
    next unless $f->{node} == $r->{node};
    return "$f->{what}, stale" if $f->{t0} <= $r->{t} && ($f->{t1} // 9e9) + 1 >= $r->{t};
  }
  return undef;
}

# verdict() -> the history check's findings (see the top of this file),
# without asserting: { history, acked, keys, lost => [...], unsent =>
# [...], wrong => [...], bad_dup => [...], dup_why => {why => n}, dups,
# twice, runs, jobs_run, unacked_ran, errors, gave_up }. The lists hold
# one line of explanation per case.
sub verdict {
  my ($self) = @_;
  my $h = $self->_history;
  my (@lost, @unsent, @wrong, @bad_dup, %dup_why, $n_runs);
  my %ran_key;
  for my $p (keys %{ $h->{handed} }) {
    my ($key) = $p =~ /\A(.*):\d+\z/;
    push @unsent, $p unless defined $key && $h->{sent}{$p};
    $ran_key{ $key // $p }{$p} = 1;
    my @r = sort { $a->{t} <=> $b->{t} } @{ $h->{handed}{$p} };
    $n_runs += @r;
    for my $i (1 .. $#r) {
      my $why = $self->_why_again($h, $r[$i - 1], $r[$i]{t}) // $self->_why_stale($r[$i]);
      if ($why) {
        $dup_why{$why}++;
      } else {
        push @bad_dup, sprintf('%s (%s on %s at %.3f, again %s on %s at %.3f)', $p,
                               $r[$i - 1]{wid}, $self->node_name($r[$i - 1]{node}), $r[$i - 1]{t},
                               $r[$i]{wid}, $self->node_name($r[$i]{node}), $r[$i]{t});
      }
    }
  }
  my %key_of_handle;
  for my $p (keys %{ $h->{handed} }) {
    my ($key) = $p =~ /\A(.*):\d+\z/;
    for my $r (@{ $h->{handed}{$p} }) {
      next if $r->{handle} eq '-';
      $key_of_handle{ $r->{handle} }{ $key // $p } = 1;
    }
  }
  push @wrong, map { "handle $_ ran keys " . join(',', sort keys %{ $key_of_handle{$_} }) }
    grep { keys %{ $key_of_handle{$_} } > 1 } sort keys %key_of_handle;
  for my $key (sort keys %{ $h->{acked} }) {
    my $a = $h->{acked}{$key};
    push @lost, "$key (acknowledged by " . $self->node_name($a->{node}) . " as $a->{handle} at $a->{t})"
      unless $ran_key{$key};
    my $k = $key_of_handle{ $a->{handle} };
    push @wrong, "$key acknowledged as $a->{handle}, which ran " . join(',', sort keys %$k)
      if $a->{handle} ne '-' && $k && !$k->{$key};
  }
  my $dups = 0;
  $dups += $_ for values %dup_why;
  return { history => $h, lost => \@lost, unsent => \@unsent, wrong => \@wrong,
           bad_dup => \@bad_dup, dup_why => \%dup_why, dups => $dups,
           twice => scalar(grep { keys %{ $ran_key{$_} } > 1 } keys %ran_key),
           acked => scalar(keys %{ $h->{acked} }), keys => scalar(keys %{ $h->{keys} }),
           unacked_ran => scalar(grep { !$h->{acked}{$_} } keys %ran_key),
           runs => $n_runs // 0, jobs_run => scalar(keys %{ $h->{handed} }),
           errors => $h->{errors}, gave_up => $h->{gave_up} };
}

# The name of node $k (0-based), as the faults and findings give it.
sub node_name {
  my ($self, $k) = @_;
  return $self->{nodes}[$k]{name} // 'n' . ($k + 1);
}

# The faults as one line each: what, node, begin-end.
sub fault_lines {
  my ($self) = @_;
  return map { sprintf('%s %s %.3f-%s', $_->{what}, $self->node_name($_->{node}), $_->{t0},
                       defined $_->{t1} ? sprintf('%.3f', $_->{t1}) : '') }
         @{ $self->{faults} };
}

# check($name, %o): the history check as test assertions. Returns the
# history for test-specific checks. %o: kinds => [...] the client kinds
# that must have submitted and run something.
sub check {
  my ($self, $name, %o) = @_;
  my $v = $self->verdict;
  my $h = $v->{history};
  my $show = sub { my @l = sort @_; splice(@l, 5) if @l > 5; return join('; ', @l); };

  Test::More::ok($v->{acked} > 0, "$name: jobs were acknowledged");
  Test::More::is(scalar @{ $v->{lost} }, 0,
                 "$name: zero acknowledged jobs lost ($v->{acked} acknowledged)")
    or Test::More::diag('lost: ' . $show->(@{ $v->{lost} }));
  Test::More::is(scalar @{ $v->{unsent} }, 0, "$name: nothing handed out that was not submitted")
    or Test::More::diag('unsent: ' . $show->(@{ $v->{unsent} }));
  Test::More::is(scalar @{ $v->{wrong} }, 0,
                 "$name: every handle names one job, the one acknowledged")
    or Test::More::diag($show->(@{ $v->{wrong} }));
  Test::More::is(scalar @{ $v->{bad_dup} }, 0,
                 "$name: a job handed out again only after its worker's node was harmed")
    or Test::More::diag('again without a cause: ' . $show->(@{ $v->{bad_dup} })
                        . "\nfaults: " . join('; ', $self->fault_lines));
  for my $kind (@{ $o{kinds} || [] }) {
    next unless have($kind);
    Test::More::ok($h->{kind_acks}{$kind}, "$name: the $kind client got acknowledgments")
      if grep { $_->{kind} eq $kind && $_->{role} eq 'sub' } @{ $self->{kids} };
    Test::More::ok($h->{kind_runs}{$kind}, "$name: the $kind worker ran jobs")
      if grep { $_->{kind} eq $kind && $_->{role} eq 'work' } @{ $self->{kids} };
  }
  Test::More::diag("$name: " . $self->summary($v));
  return $h;
}

# summary($verdict) -> one line: what was sent, acknowledged, run, again.
sub summary {
  my ($self, $v) = @_;
  my $h = $v->{history};
  my %w = %{ $v->{dup_why} };
  return sprintf(
    '%d keys submitted, %d acknowledged, %d never (%d of those ran), %d send errors; '
    . '%d handouts of %d jobs; %d handed out again (%s); %d keys ran under two attempts; '
    . 'acknowledged by client %s; run by worker %s; faults %d',
    $v->{keys}, $v->{acked}, $v->{keys} - $v->{acked}, $v->{unacked_ran}, $v->{errors},
    $v->{runs}, $v->{jobs_run}, $v->{dups},
    join(', ', map { "$_ $w{$_}" } sort keys %w) || 'none', $v->{twice},
    join(' ', map { "$_=$h->{kind_acks}{$_}" } sort keys %{ $h->{kind_acks} }),
    join(' ', map { "$_=$h->{kind_runs}{$_}" } sort keys %{ $h->{kind_runs} }),
    scalar @{ $self->{faults} });
}

1;
