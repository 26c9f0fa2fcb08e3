# SPDX-License-Identifier: BSD-3-Clause
# -w/--worker-wakeup N: how many sleeping workers get a NOOP per queued
# job (0, the default: all of them). Three workers of one function sleep
# (PRE_SLEEP); with -w 1 one background job wakes exactly one of them,
# two jobs wake two; without the flag one job wakes all three.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use IO::Select;

# Sleeping workers of function F, each known to be asleep (PRE_SLEEP
# was read: an ECHO sent after it came back).
sub sleepers {
  my ($srv, $f, $n) = @_;
  my @w = map { $srv->conn } 1 .. $n;
  for my $w (@w) {
    $w->can_do($f);
    $w->send_pkt(PRE_SLEEP);
    $w->sync;
  }
  return @w;
}

# How many of the workers got a NOOP: waits for WANT of them (or 10 s),
# then checks that the rest stay quiet for a moment.
sub noops {
  my ($want, @w) = @_;
  my %got;
  my $end = Time::HiRes::time() + deadline_secs(10);
  while (keys %got < $want && Time::HiRes::time() < $end) {
    for my $i (0 .. $#w) {
      next if $got{$i};
      my $p = $w[$i]->read_pkt(0.05);
      next unless $p;
      die "worker $i: unexpected $p->{name}" unless $p->{type} == NOOP;
      $got{$i} = 1;
    }
  }
  for my $i (0 .. $#w) {
    next if $got{$i};
    $got{$i} = 1 unless $w[$i]->quiet(0.3);
  }
  return scalar keys %got;
}

{
  my $srv = start_server(args => ['-w', '1']);
  my @w = sleepers($srv, 'ww', 3);
  my $c = $srv->conn;
  $c->submit(SUBMIT_JOB_BG, 'ww', '', 'one');
  is(noops(1, @w), 1, '-w 1: one job wakes exactly one of three sleeping workers');
  my @v = sleepers($srv, 'ww2', 3);
  $c->submit(SUBMIT_JOB_BG, 'ww2', '', 'a');
  $c->submit(SUBMIT_JOB_BG, 'ww2', '', 'b');
  is(noops(2, @v), 2, '-w 1: two jobs wake two of three');
  $srv->stop(20);
}

{
  my $srv = start_server(args => []);
  my @w = sleepers($srv, 'ww', 3);
  $srv->conn->submit(SUBMIT_JOB_BG, 'ww', '', 'one');
  is(noops(3, @w), 3, 'default: one job wakes all three sleeping workers');
}
done_testing();
