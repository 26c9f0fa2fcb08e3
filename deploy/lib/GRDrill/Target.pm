# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/lib/GRDrill/Target.pm - what deploy/drill does harm to: a
# cluster of gearraftd nodes, each an object with the interface of the
# integration suite's servers (tests/integration/lib/GRTest.pm: host,
# port, addr, conn, admin, cluster, status, alive, kill, start_again,
# stop, and {name}), so that GRLoad's clients and history check work on
# it unchanged.
#
# Two kinds: GRDrill::Local (three processes on loopback that the drill
# starts) and GRDrill::Compose (the containers of a running Docker
# Compose project). Each provides:
#   kill($k, $sig)   KILL, STOP, CONT on node $k (0-based)
#   start($k)        start node $k again after a kill
#   restart($k)      a clean stop (SIGTERM) and a start
#   isolate($k)      cut node $k off from its peers (clients still reach it)
#   heal()           every link carries traffic again
#   healthy($k)      (1, '') or (0, why): the node's GET /health
#   discard($k)      stop node $k and delete its data directory
#   start_as($k, $name, $join)  start node $k afresh under a new name
#                    with --join $join, on the same client port
#   cleanup()        what the drill leaves behind
# This file holds what both share: membership changes and the rejoin.
package GRDrill::Target;

use strict;
use warnings;

use GRTest ();

sub nodes { return @{ $_[0]{nodes} }; }
sub node { return $_[0]{nodes}[ $_[1] ]; }
sub name { return $_[0]{nodes}[ $_[1] ]{name}; }
sub describe { return $_[0]{describe}; }

# change($cmd, %o) -> the reply of the first node that takes the
# membership command $cmd ("remove n3", "add n3b n3b:4731", ...): "OK\r\n",
# or the last refusal. Refusals that pass by themselves (a learner still
# catching up, another change not yet committed) and nodes that do not
# answer are tried again until timeout => secs (default 60). Nodes in
# skip => {k => 1} are not asked.
sub change {
  my ($self, $cmd, %o) = @_;
  my $last = 'no node answered';
  my $again = qr/\AERR (?:NOT_CAUGHT_UP|CHANGE_IN_PROGRESS)\b/;
  GRTest::wait_until(sub {
    for my $k (0 .. $#{ $self->{nodes} }) {
      next if $o{skip} && $o{skip}{$k};
      my $r = eval { $self->{nodes}[$k]->admin($cmd) };
      next unless defined $r;
      $last = $r;
      return 1 if $r eq "OK\r\n" || $r !~ $again;
    }
    return 0;
  }, $o{timeout} // 60);
  $last =~ s/\r?\n\z//;
  return $last;
}

# The members as node $k lists them: "name=addr,...", for --join.
sub members_of {
  my ($self, $k) = @_;
  my $v = eval { $self->{nodes}[$k]->cluster } or return undef;
  return join(',', map { "$_->{name}=$_->{addr}" } @{ $v->{members} });
}

# rejoin($k, $load) -> (ok, what happened): node $k, a follower, loses its
# disk and comes back as a new member: removed from the configuration
# (through another node), stopped and wiped, started empty with --join
# under the name "<old>b" (a name is used once), added as a learner and
# promoted once caught up. Its client port stays the same, so clients
# that used it come back to it.
sub rejoin {
  my ($self, $k, $load) = @_;
  my $old = $self->name($k);
  my $new = "${old}b";
  my ($other) = grep { $_ != $k } 0 .. $#{ $self->{nodes} };
  # The harm begins with the removal: it requeues the jobs the node's
  # workers hold, which then run again elsewhere.
  $load->fault_begin($k, "wipe-$old");
  my $r = $self->change("remove $old", skip => { $k => 1 });
  return (0, "remove $old: $r") unless $r eq 'OK';
  $self->discard($k);
  my $join = $self->members_of($other) or return (0, "no member list from " . $self->name($other));
  my $addr = $self->start_as($k, $new, $join);
  $r = $self->change("add $new $addr", skip => { $k => 1 });
  return (0, "add $new $addr: $r") unless $r eq 'OK';
  $r = $self->change("promote $new", skip => { $k => 1 }, timeout => 120);
  return (0, "promote $new: $r") unless $r eq 'OK';
  $load->fault_end($k);
  return (1, "$old removed, wiped, rejoined as $new ($addr) and promoted");
}

1;
