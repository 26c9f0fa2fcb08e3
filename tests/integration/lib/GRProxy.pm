# SPDX-License-Identifier: BSD-3-Clause
#
# tests/integration/lib/GRProxy.pm - a fault proxy between cluster peers.
#
# Each node of a test cluster dials its peers at the addresses its own
# --initial-cluster lists. GRProxy gives every ordered pair (i, j) a port
# of its own and lists it to node i as node j's address; one forked
# process accepts there, dials node j's real peer port and copies bytes
# both ways. A test can then cut the link between any two nodes, in one
# direction or both, while the Gearman ports (which clients use directly)
# stay reachable: a node in the minority of a partition still answers its
# clients, which is the case worth testing.
#
# A cut link is held, not reset: the proxy stops reading and writing the
# connections of that pair, and connections accepted while it is cut are
# dialled through but carry nothing. So a partition looks to the nodes
# like a network that drops everything (silence, then their own
# timeouts), and healing it lets the held bytes through in order, as TCP
# would after a short outage. A connection either side closes is closed
# on the other side once the pair carries traffic again. A test can also
# slow every connection down to a rate, as a slow link would.
#
# Why a proxy and not network namespaces: it needs no privileges, leaves
# nothing behind when a test is killed, and runs wherever the suite does.
#
# Not here: the Gearman side (GRTest), the load and the history check
# (GRLoad).
package GRProxy;

use strict;
use warnings;

use Errno ();
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use List::Util ();
use POSIX ();
use Time::HiRes ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC IPPROTO_TCP TCP_NODELAY);

use constant CHUNK => 65536;    # bytes read per call, and held per side

# GRProxy->new($n) -> a running proxy for a cluster of $n nodes (1-based
# indexes). The ports of every pair are bound before the fork, so nothing
# can take them; node_port($k) is where node k must listen for peers.
sub new {
  my ($class, $n) = @_;
  my (%lis, %port);
  my @real = map { GRTest::free_port() } 1 .. $n;
  for my $i (1 .. $n) {
    for my $j (1 .. $n) {
      next if $i == $j;
      my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Proto => 'tcp', Listen => 64,
                                    ReuseAddr => 1)
        or die "proxy: cannot bind a port: $!";
      $lis{"$i,$j"} = $l;
      $port{"$i,$j"} = $l->sockport;
    }
  }
  socketpair(my $mine, my $its, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
    or die "proxy: socketpair: $!";
  my $pid = fork() // die "proxy: fork: $!";
  if ($pid == 0) {
    close $mine;
    _serve(\%lis, \@real, $its);
    POSIX::_exit(0);
  }
  close $its;
  close $_ for values %lis;
  $mine->autoflush(1);
  my $self = bless { n => $n, real => \@real, port => \%port, pid => $pid,
                     ctl => $mine, owner => $$ }, $class;
  return $self;
}

# Where node $k (1-based) listens for its peers, and the address node $i
# is given for node $j.
sub node_port { my ($s, $k) = @_; return $s->{real}[$k - 1]; }
sub addr {
  my ($s, $i, $j) = @_;
  my $port = $i == $j ? $s->{real}[$i - 1] : $s->{port}{"$i,$j"};
  return "127.0.0.1:$port";
}

# The --initial-cluster list node $k is started with: itself at its real
# address, every other node behind the proxy.
sub initial_cluster {
  my ($s, $k) = @_;
  return join(',', map { "n$_=" . $s->addr($k, $_) } 1 .. $s->{n});
}

# cut(@pairs): each pair [i, j] stops carrying bytes (the link i dialled
# to j: i's frames to j and j's hello back). Returns once the proxy has
# applied it: no byte of those pairs moves after that.
sub cut {
  my ($s, @pairs) = @_;
  return $s->_ctl(join(' ', 'cut', map { "$_->[0],$_->[1]" } @pairs));
}

# isolate(\@a, \@b): every link between a node of @a and one of @b is cut,
# both ways (a partition).
sub isolate {
  my ($s, $a, $b) = @_;
  my @p;
  for my $i (@$a) {
    for my $j (@$b) { push @p, [$i, $j], [$j, $i]; }
  }
  return $s->cut(@p);
}

# heal(): every pair carries bytes again.
sub heal { my ($s) = @_; return $s->_ctl('heal'); }

# rate($bytes_per_sec): every connection carries at most that many bytes
# a second each way, as a slow link would (0: as fast as it can).
sub rate { my ($s, $bps) = @_; return $s->_ctl("rate $bps"); }

sub _ctl {
  my ($s, $line) = @_;
  print { $s->{ctl} } "$line\n" or die "proxy: control write: $!";
  my $sel = IO::Select->new($s->{ctl});
  my $buf = '';
  while ($buf !~ /\n/) {
    die 'proxy: no answer to the control line' unless $sel->can_read(10);
    my $r = sysread($s->{ctl}, $buf, 256, length $buf);
    die 'proxy: the proxy process went away' unless $r;
  }
  die "proxy: $buf" unless $buf eq "ok\n";
  return 1;
}

sub stop {
  my ($s) = @_;
  return unless $s->{pid} && $$ == $s->{owner};
  kill 'KILL', $s->{pid};
  waitpid($s->{pid}, 0);
  delete $s->{pid};
}

sub DESTROY { $_[0]->stop; }

# --- the proxy process --------------------------------------------------

sub _nonblock {
  my ($fh) = @_;
  $fh->blocking(0);
  setsockopt($fh, IPPROTO_TCP, TCP_NODELAY, 1);
}

# One select loop: the control socket, the listeners, and the two sides of
# each connection ({pair, a => socket from node i, b => socket to node j,
# ab => bytes read from a not yet written to b, ba => the other way}).
sub _serve {
  my ($lis, $real, $ctl) = @_;
  my %cut;    # "i,j" => 1 while held
  my $rate = 0;    # bytes a second each way per connection; 0: no limit
  my $last = Time::HiRes::time();
  my @conns;
  my %pair_of = map { fileno($lis->{$_}) => $_ } keys %$lis;
  $_->blocking(0) for values %$lis;
  my $cbuf = '';
  while (1) {
    my $rd = IO::Select->new($ctl, values %$lis);
    my $wr = IO::Select->new;
    my $now = Time::HiRes::time();
    for my $c (@conns) {
      # The allowance of each direction, refilled with time (rate).
      for my $d (qw(ab ba)) {
        $c->{"t$d"} = $rate ? List::Util::min(CHUNK, ($c->{"t$d"} // 0) + ($now - $last) * $rate)
                            : CHUNK;
      }
    }
    $last = $now;
    for my $c (@conns) {
      next if $cut{ $c->{pair} };
      $rd->add($c->{a}) if length($c->{ab}) < CHUNK && $c->{tab} >= 1;
      $rd->add($c->{b}) if length($c->{ba}) < CHUNK && $c->{tba} >= 1;
      $wr->add($c->{b}) if length $c->{ab};
      $wr->add($c->{a}) if length $c->{ba};
    }
    my ($r, $w) = IO::Select->select($rd, $wr, undef, $rate ? 0.005 : 5);
    next unless $r || $w;    # a timeout, or EINTR
    my %ready = map { fileno($_) => 1 } @{ $r || [] };
    my %writable = map { fileno($_) => 1 } @{ $w || [] };
    if ($ready{ fileno $ctl }) {
      my $got = sysread($ctl, $cbuf, 4096, length $cbuf);
      POSIX::_exit(0) unless $got;    # the test is gone
      while ($cbuf =~ s/\A([^\n]*)\n//) {
        my ($cmd, @args) = split ' ', $1;
        if ($cmd eq 'cut') {
          $cut{$_} = 1 for @args;
        } elsif ($cmd eq 'heal') {
          %cut = ();
        } elsif ($cmd eq 'rate') {
          $rate = $args[0] // 0;
        }
        syswrite($ctl, $cmd =~ /\A(?:cut|heal|rate)\z/ ? "ok\n" : "bad command\n");
      }
    }
    for my $fd (grep { $pair_of{$_} } keys %ready) {
      my $pair = $pair_of{$fd};
      my $a = $lis->{$pair}->accept or next;
      my ($j) = $pair =~ /,(\d+)\z/;
      my $b = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                    PeerPort => $real->[$j - 1],
                                    Proto => 'tcp');
      if (!$b) {
        close $a;    # node j is down: the dialler sees the close
        next;
      }
      _nonblock($_) for $a, $b;
      push @conns, { pair => $pair, a => $a, b => $b, ab => '', ba => '',
                     tab => CHUNK, tba => CHUNK };
    }
    my @keep;
    for my $c (@conns) {
      my $ok = 1;
      if (!$cut{ $c->{pair} }) {
        $ok &&= _move($c->{a}, \$c->{ab}, \$c->{tab}) if $ready{ fileno $c->{a} };
        $ok &&= _move($c->{b}, \$c->{ba}, \$c->{tba}) if $ok && $ready{ fileno $c->{b} };
        $ok &&= _flush($c->{b}, \$c->{ab}) if $ok && $writable{ fileno $c->{b} };
        $ok &&= _flush($c->{a}, \$c->{ba}) if $ok && $writable{ fileno $c->{a} };
      }
      if ($ok) {
        push @keep, $c;
      } else {
        close $c->{a};
        close $c->{b};
      }
    }
    @conns = @keep;
  }
}

# Reads what FH has into $$buf, at most $$allow bytes (which it uses
# up); false once it is closed or failed.
sub _move {
  my ($fh, $buf, $allow) = @_;
  my $want = List::Util::min(CHUNK - length($$buf), int($$allow));
  my $n = sysread($fh, $$buf, $want, length $$buf);
  return 1 if !defined $n && ($!{EAGAIN} || $!{EINTR});
  $$allow -= $n if $n;
  return $n ? 1 : 0;
}

# Writes what it can of $$buf to FH; false when FH failed.
sub _flush {
  my ($fh, $buf) = @_;
  my $n = syswrite($fh, $$buf);
  if (!defined $n) {
    return ($!{EAGAIN} || $!{EINTR}) ? 1 : 0;
  }
  substr($$buf, 0, $n) = '';
  return 1;
}

1;
