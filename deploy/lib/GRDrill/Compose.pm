# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/lib/GRDrill/Compose.pm - a drill target made of the running
# containers of a Docker Compose project (deploy/docker-compose.yml or
# one like it): every container of the project whose Gearman port 4730
# is published is a node, reached by clients on that published port.
# It needs only the docker command (the containers are found by the
# labels both `docker compose` and docker-compose 1.29 put on them) and,
# for partitions, root: nsenter and iptables in the container's network
# namespace.
#
#   kill        docker kill (SIGKILL); STOP and CONT are docker pause and
#               unpause (the cgroup freezer: the node stops at once, as
#               with SIGSTOP)
#   restart     docker stop (SIGTERM, 30 s) and docker start
#   isolate     drops every packet to or from the peer port inside the
#               node's network namespace; its Gearman port stays open
#   healthy     the image's own health check (gearraft-health) in the
#               container
#   rejoin      the container is removed and its volume emptied; a new
#               container (docker run, label gearraft.drill=PROJECT) of
#               the same image, on the project's network, with the same
#               volume and the same published client port, joins under
#               the new name. Compose does not know it: `down` leaves it
#               (deploy/compose-test.sh removes it), and the service it
#               replaced must not be started again from the compose file,
#               whose --node-id is a name the cluster no longer takes.
package GRDrill::Compose;

use strict;
use warnings;

use POSIX ();
use parent -norequire, 'GRDrill::Target';

use GRDrill::Target ();
use GRTest ();

sub _docker {
  my (@args) = @_;
  my $pid = open(my $fh, '-|') // die "fork: $!";
  if ($pid == 0) {
    open STDERR, '>&', \*STDOUT;
    { exec 'docker', @args; }
    POSIX::_exit(127);
  }
  local $/;
  my $out = <$fh> // '';
  close $fh;
  $out =~ s/\s+\z//;
  return wantarray ? ($out, $? >> 8) : $out;
}

sub _must {
  my (@args) = @_;
  my ($out, $rc) = _docker(@args);
  die "docker @args: $out\n" if $rc;
  return $out;
}

# new(project => NAME, peer_port => 4731)
sub new {
  my ($class, %o) = @_;
  my $p = $o{project} or die "a compose project name is needed\n";
  my @ids = split ' ', _must('ps', '-q', '--filter', "label=com.docker.compose.project=$p");
  my @nodes;
  for my $id (@ids) {
    my $pub = _docker('port', $id, '4730/tcp');
    my ($hp) = $pub =~ /:(\d+)$/m or next;
    my $svc = _must('inspect', '-f', '{{index .Config.Labels "com.docker.compose.service"}}', $id);
    my $s = bless { host => '127.0.0.1', port => $hp, cid => $id, service => $svc,
                    name => $svc }, 'GRDrill::Compose::Node';
    my $v = eval { $s->cluster };
    $s->{name} = $v->{node}{self} if $v && $v->{node}{self};
    push @nodes, $s;
  }
  die "project $p: no running container publishes port 4730\n" unless @nodes;
  @nodes = sort { $a->{service} cmp $b->{service} } @nodes;
  my $id0 = $nodes[0]{cid};
  my $net = _must('inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', $id0);
  ($net) = split ' ', $net;
  return bless {
    nodes => \@nodes, project => $p, network => $net, peer_port => $o{peer_port} // 4731,
    image => _must('inspect', '-f', '{{.Config.Image}}', $id0), cut => {},
    describe => sprintf('Docker Compose project %s: %s', $p,
                        join(', ', map { "$_->{service} ($_->{name}) on 127.0.0.1:$_->{port}" } @nodes)),
  }, $class;
}

sub kill { my ($self, $k, $sig) = @_; $self->node($k)->kill($sig); }
sub start { my ($self, $k) = @_; $self->node($k)->start_again; }

sub restart {
  my ($self, $k) = @_;
  my $s = $self->node($k);
  _must('stop', '-t', '30', $s->{cid});
  my $code = _docker('inspect', '-f', '{{.State.ExitCode}}', $s->{cid});
  $s->start_again;
  return $code eq '0';
}

sub _rules {
  my ($self, $op, $k) = @_;
  my $pid = _must('inspect', '-f', '{{.State.Pid}}', $self->node($k)->{cid});
  my $pp = $self->{peer_port};
  for my $r (['INPUT', '--dport'], ['INPUT', '--sport'], ['OUTPUT', '--dport'], ['OUTPUT', '--sport']) {
    system('nsenter', '-t', $pid, '-n', 'iptables', $op, $r->[0], '-p', 'tcp', $r->[1], $pp,
           '-j', 'DROP') == 0
      or die "iptables $op in the network namespace of $self->{nodes}[$k]{service} failed\n";
  }
}

sub isolate {
  my ($self, $k) = @_;
  $self->_rules('-I', $k);
  $self->{cut}{$k} = 1;
}

sub heal {
  my ($self) = @_;
  for my $k (keys %{ $self->{cut} }) {
    eval { $self->_rules('-D', $k); 1 } or warn $@;
  }
  $self->{cut} = {};
}

sub healthy {
  my ($self, $k) = @_;
  my ($out, $rc) = _docker('exec', $self->node($k)->{cid}, 'gearraft-health');
  return $rc == 0 ? (1, '') : (0, 'gearraft-health failed' . ($out ne '' ? ": $out" : ''));
}

sub discard {
  my ($self, $k) = @_;
  my $s = $self->node($k);
  $s->{volume} = _must('inspect', '-f',
    '{{range .Mounts}}{{if eq .Destination "/var/lib/gearraft"}}{{.Name}}{{end}}{{end}}', $s->{cid});
  die "$s->{service}: no volume at /var/lib/gearraft\n" unless $s->{volume};
  _must('rm', '-f', $s->{cid});
  _must('run', '--rm', '--user', 'root', '--entrypoint', 'sh', '-v', "$s->{volume}:/wipe",
        $self->{image}, '-c', 'find /wipe -mindepth 1 -delete');
}

sub start_as {
  my ($self, $k, $name, $join) = @_;
  my $s = $self->node($k);
  my $cname = "$self->{project}-$name";
  _docker('rm', '-f', $cname);
  $s->{cid} = _must('run', '-d', '--name', $cname, '--label', "gearraft.drill=$self->{project}",
                    '--network', $self->{network}, '--network-alias', $name,
                    '--hostname', $name, '--restart', 'unless-stopped',
                    '-v', "$s->{volume}:/var/lib/gearraft", '-p', "127.0.0.1:$s->{port}:4730",
                    $self->{image}, '--node-id', $name,
                    '--peer-listen', "0.0.0.0:$self->{peer_port}", '--join', $join);
  $s->wait_serving;
  $s->{name} = $name;
  $s->{service} = $cname;
  return "$name:$self->{peer_port}";
}

sub cleanup { $_[0]->heal; }

package GRDrill::Compose::Node;

use strict;
use warnings;

use parent -norequire, 'GRTest::Server';

sub kill {
  my ($s, $sig) = @_;
  my %how = (KILL => ['kill', '-s', 'KILL'], STOP => ['pause'], CONT => ['unpause'],
             TERM => ['kill', '-s', 'TERM']);
  my $how = $how{$sig} or die "no docker way to send $sig\n";
  GRDrill::Compose::_must(@$how, $s->{cid});
}

sub start_again {
  my ($s) = @_;
  GRDrill::Compose::_must('start', $s->{cid});
  $s->wait_serving;
}

# Until the client port accepts a connection (60 s at most).
sub wait_serving {
  my ($s) = @_;
  GRTest::wait_until(sub { my $c = eval { $s->conn }; $c && $c->close; $c }, 60)
    or die "$s->{service}: the client port $s->{port} does not accept\n";
}

sub alive {
  my ($s) = @_;
  return GRDrill::Compose::_docker('inspect', '-f', '{{.State.Running}}', $s->{cid}) eq 'true';
}

1;
