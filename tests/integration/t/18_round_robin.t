# SPDX-License-Identifier: BSD-3-Clause
# -R/--round-robin: a worker of several functions gets them in turn (the
# function it was just given moves to the end of its list); without it,
# the worker drains its most recently registered function first. Checked
# against gearmand 1.1, whose order this is.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

# Queues A1 A2 B1 B2 (background, normal priority), then lets one worker
# that registered rrA then rrB take everything; returns the payloads in
# the order it got them.
sub order {
  my (@args) = @_;
  my $srv = start_server(args => \@args);
  my $c = $srv->conn;
  $c->submit(SUBMIT_JOB_BG, 'rrA', '', $_) for qw(A1 A2);
  $c->submit(SUBMIT_JOB_BG, 'rrB', '', $_) for qw(B1 B2);
  my $w = $srv->conn;
  $w->can_do('rrA');
  $w->can_do('rrB');
  my @got;
  for (1 .. 5) {
    my $a = $w->grab;
    last if $a->{name} eq 'NO_JOB';
    push @got, $a->{args}[2];
    $w->send_pkt(WORK_COMPLETE, $a->{args}[0], '');
  }
  $srv->stop(20);
  return join(' ', @got);
}

is(order(), 'B1 B2 A1 A2', 'default: the newest function is drained first');
is(order('-R'), 'B1 A1 B2 A2', '-R: the functions take turns');
is(order('--round-robin'), 'B1 A1 B2 A2', '--round-robin: the same');
done_testing();
