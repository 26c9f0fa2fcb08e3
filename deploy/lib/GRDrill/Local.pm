# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/lib/GRDrill/Local.pm - a drill target of three gearraftd
# processes on 127.0.0.1 that the drill starts itself, each in its own
# temporary directory with default cluster flags and GET /health on a
# port of its own. Peers reach each other through the integration
# suite's fault proxy (tests/integration/lib/GRProxy.pm), so that a
# partition cuts the peer links while clients still reach every node.
# Everything is killed when the drill exits.
package GRDrill::Local;

use strict;
use warnings;

use parent -norequire, 'GRDrill::Target';
use File::Path ();
use HTTP::Tiny ();

use GRDrill::Target ();
use GRProxy ();
use GRTest ();

# new(gearraftd => PATH, n => 3, args => [...])
sub new {
  my ($class, %o) = @_;
  $ENV{GR_SERVER} = 'gearraftd';
  $ENV{GEARRAFTD} = $o{gearraftd};
  my $n = $o{n} // 3;
  my $px = GRProxy->new($n);
  my @http = map { GRTest::free_port() } 1 .. $n;
  my @nodes = GRTest::start_cluster($n, proxy => $px, args => $o{args} || [],
    node_args => sub { ('--http-listen', "127.0.0.1:$http[$_[0] - 1]") });
  $nodes[$_]{http} = $http[$_] for 0 .. $#nodes;
  return bless {
    nodes => \@nodes, proxy => $px,
    describe => sprintf('%d local gearraftd processes (%s), client ports %s', $n,
                        $o{gearraftd}, join(' ', map { $_->port } @nodes)),
  }, $class;
}

sub kill { my ($self, $k, $sig) = @_; $self->node($k)->kill($sig); }
sub start { my ($self, $k) = @_; $self->node($k)->start_again; }

sub restart {
  my ($self, $k) = @_;
  my $st = $self->node($k)->stop(30);
  $self->node($k)->start_again;
  return defined $st && $st == 0;
}

sub isolate {
  my ($self, $k) = @_;
  my @others = grep { $_ != $k + 1 } 1 .. scalar @{ $self->{nodes} };
  $self->{proxy}->isolate([$k + 1], \@others);
}

sub heal { $_[0]{proxy}->heal; }

sub healthy {
  my ($self, $k) = @_;
  my $r = HTTP::Tiny->new(timeout => 3)
                    ->get("http://127.0.0.1:$self->{nodes}[$k]{http}/health");
  return (1, '') if $r->{status} == 200;
  my $why = $r->{content} // $r->{reason};
  $why =~ s/\s+\z//;
  return (0, "$r->{status} $why");
}

sub discard {
  my ($self, $k) = @_;
  my $s = $self->node($k);
  $s->kill('KILL');
  File::Path::remove_tree($s->datadir);
}

# Its peer port is a new one, given to the others directly: a later
# partition of this node cuts only the links that still pass the proxy.
sub start_as {
  my ($self, $k, $name, $join) = @_;
  my $s = $self->node($k);
  my $peer = '127.0.0.1:' . GRTest::free_port();
  $s->{args} = ['--node-id', $name, '--peer-listen', $peer, '--join', $join,
                '--http-listen', "127.0.0.1:$s->{http}"];
  $s->start_again;
  $s->{name} = $name;
  $s->{peer} = $peer;
  return $peer;
}

sub cleanup {
  my ($self) = @_;
  $_->kill('KILL') for @{ $self->{nodes} };
  $self->{proxy}->stop;
}

1;
