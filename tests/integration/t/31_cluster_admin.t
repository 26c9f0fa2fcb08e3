# SPDX-License-Identifier: BSD-3-Clause
# The admin `cluster` line and the gearraft tool (docs/protocol.md, "Admin
# lines"): on a three-node cluster every node, once settled, names the same
# leader in the same term, lists every member with its peer address and
# exactly one leader; the leader shows how far each member's log matches
# and sees them all reachable; a follower killed with SIGKILL becomes
# unreachable in the leader's view. `gearraft cluster` prints the same as
# a table (or the lines with --raw) and exits 0; a closed port exits 1, a
# bad command line 2. The one-node default answers with itself alone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my @n = start_cluster(3);
my %peer_of = map { $_->{name} => $_->{peer} } @n;
my @names = sort keys %peer_of;

# A leader has committed something once a submission is acknowledged.
{
  my $c = $n[0]->conn;
  $c->send_pkt(SUBMIT_JOB_BG, 'clu', '', 'x');
  $c->expect(JOB_CREATED, 30);
  $c->close;
}

# Settled: every node answers, names one leader in one term, sees every
# other member reachable, and the leader's match indexes reached its last.
my $views = wait_until(sub {
  my @v = map { $_->cluster } @n;
  return undef if grep { !defined } @v;
  my %terms = map { $_->{node}{term} => 1 } @v;
  my %leaders = map { $_->{node}{leader} => 1 } @v;
  return undef unless keys %terms == 1 && keys %leaders == 1;
  return undef if $v[0]{node}{leader} eq '-';
  my ($lv) = grep { $_->{node}{role} eq 'leader' } @v;
  return undef unless $lv;
  return undef if grep { $_->{reachable} eq 'no' } map { @{ $_->{members} } } @v;
  return undef if grep { $_->{match} ne $lv->{node}{last} } @{ $lv->{members} };
  return \@v;
}, 30);
ok($views, 'every node shows the same leader and term, all reachable, matched')
  or BAIL_OUT('the cluster did not settle: ' . join(' | ', map { $_->admin('cluster') } @n));

my $leader = $views->[0]{node}{leader};
ok(exists $peer_of{$leader}, "the leader ($leader) is a member");
for my $k (0 .. 2) {
  my $v = $views->[$k];
  my $self = $n[$k]{name};
  my $node = $v->{node};
  is($node->{self}, $self, "$self: self=$self");
  is($node->{cluster}, 'gearraft', "$self: cluster=gearraft");
  like("$node->{commit} $node->{applied} $node->{last}", qr/\A\d+ \d+ \d+\z/,
       "$self: commit, applied and last are numbers");
  cmp_ok($node->{commit}, '>=', 1, "$self: something is committed");
  is($node->{role}, $self eq $leader ? 'leader' : 'follower', "$self: role");
  is_deeply([map { $_->{name} } @{ $v->{members} }], \@names,
            "$self: every member, in name order");
  is_deeply({ map { $_->{name} => $_->{addr} } @{ $v->{members} } }, \%peer_of,
            "$self: each with its peer address");
  is_deeply([map { $_->{name} } grep { $_->{role} eq 'leader' } @{ $v->{members} }],
            [$leader], "$self: one leader line, naming the leader");
  is_deeply({ map { $_->{name} => $_->{reachable} } @{ $v->{members} } },
            { map { $_ => $_ eq $self ? 'self' : 'yes' } @names },
            "$self: itself self, the others reachable");
  if ($self eq $leader) {
    ok(!grep({ $_->{match} !~ /\A\d+\z/ } @{ $v->{members} }),
       "$self (leader): a match index for every member");
  } else {
    ok(!grep({ $_->{match} ne '-' } @{ $v->{members} }),
       "$self (follower): no match indexes (match=-)");
  }
}
like($n[0]->admin('cluster'),
     qr/\Aself=\S+ leader=\S+ term=\d+ commit=\d+ applied=\d+ [^\n]*\n(?:name=\S+ addr=\S+ role=\S+ match=\S+ reachable=\S+\n){3}\.\n\z/,
     'the reply: a KEY=VALUE line, one line per member, ".", LF endings');

my ($li) = grep { $n[$_]{name} eq $leader } 0 .. 2;
my ($fi) = grep { $_ != $li } 0 .. 2;
my $lport = $n[$li]->port;

# --- the gearraft tool ---------------------------------------------------------
SKIP: {
  skip 'GEARRAFT is not set', 14 unless $ENV{GEARRAFT};
  my ($rc, $out, $err) = gearraft_run('-h', '127.0.0.1', '-p', $lport, 'cluster');
  is($rc, 0, 'gearraft cluster: exit 0') or diag $err;
  like($out, qr/^cluster\s+gearraft$/m, '... names the cluster');
  like($out, qr/^node\s+\Q$leader\E \(leader\)$/m, '... the node and its role');
  like($out, qr/^leader\s+\Q$leader\E$/m, '... the leader');
  like($out, qr/^NAME\s+ADDRESS\s+ROLE\s+MATCH\s+REACHABLE$/m, '... a table header');
  for my $name (@names) {
    my $role = $name eq $leader ? 'leader' : 'follower';
    my $reach = $name eq $leader ? 'self' : 'yes';
    like($out, qr/^\Q$name\E\s+\Q$peer_of{$name}\E\s+$role\s+\d+\s+$reach$/m,
         "... a row for $name");
  }
  ($rc, $out) = gearraft_run('-p', $n[$fi]->port, '-h', '127.0.0.1', '--raw', 'cluster');
  is($rc, 0, 'gearraft --raw cluster: exit 0');
  like($out, qr/\Aself=\Q$n[$fi]{name}\E leader=\Q$leader\E .*\n(?:name=.*\n){3}\.\n\z/,
       '... prints the protocol lines');
  ($rc, $out) = gearraft_run('-h', '127.0.0.1', '-p', $lport, 'status');
  is($rc, 0, 'gearraft status: exit 0');
  like($out, qr/\AFUNCTION\s+TOTAL\s+RUNNING\s+WORKERS\n(?:.*\n)*clu\s+1\s+0\s+0\n/,
       '... a table of the functions');
  my $closed = free_port();
  ($rc, $out, $err) = gearraft_run('-h', '127.0.0.1', '-p', $closed, 'cluster');
  is($rc, 1, 'gearraft against a closed port: exit 1');
  like($err, qr/\Agearraft: cannot connect to 127\.0\.0\.1 port $closed: /,
       '... saying it cannot connect');
}

# --- a follower killed: the leader sees it unreachable ---------------------
my $gone = $n[$fi]{name};
$n[$fi]->kill('KILL');
my $after = wait_until(sub {
  my $v = $n[$li]->cluster or return undef;
  my ($m) = grep { $_->{name} eq $gone } @{ $v->{members} };
  return $m && $m->{reachable} eq 'no' ? $v : undef;
}, 20);
ok($after, "the leader shows $gone reachable=no once it is killed");
if ($after) {
  is($after->{node}{leader}, $leader, 'the leader still leads');
  is_deeply({ map { $_->{name} => $_->{reachable} } @{ $after->{members} } },
            { map { $_ => $_ eq $gone ? 'no' : $_ eq $leader ? 'self' : 'yes' } @names },
            'the other follower is still reachable');
}
SKIP: {
  skip 'GEARRAFT is not set', 2 unless $ENV{GEARRAFT};
  my ($rc, $out, $err) = gearraft_run('-h', '127.0.0.1', '-p', $lport, 'cluster');
  like($out, qr/^\Q$gone\E\s+\S+\s+follower\s+\d+\s+no$/m,
       'gearraft cluster shows it: REACHABLE no');
  ($rc, undef, $err) = gearraft_run('-h', '127.0.0.1', '-p', $n[$fi]->port, '-t', 2000, 'cluster');
  is($rc, 1, 'gearraft against the killed node: exit 1');
}

# --- the command line ------------------------------------------------------------
SKIP: {
  skip 'GEARRAFT is not set', 8 unless $ENV{GEARRAFT};
  my ($rc, $out, $err) = gearraft_run();
  is($rc, 2, 'gearraft without a command: exit 2');
  like($err, qr/usage|command/i, '... with a usage message');
  ($rc, $out, $err) = gearraft_run('-p', $lport, 'bogus');
  is($rc, 2, 'an unknown command: exit 2');
  ($rc) = gearraft_run('-p', 'x', 'cluster');
  is($rc, 2, 'a bad port: exit 2');
  ($rc, $out) = gearraft_run('--help');
  is($rc, 0, '--help: exit 0');
  like($out, qr/^usage: gearraft .*\n(?:.*\n)*\s+cluster\s/m, '... lists the commands');
  ($rc, $out) = gearraft_run('--version');
  is($rc, 0, '--version: exit 0');
  like($out, qr/\Agearraft \d+\.\d+\.\d+\n\z/, '... prints the version');
}

# --- no majority: cluster still answers at once -----------------------------
{
  my @m = start_cluster(3);
  my $c = $m[0]->conn;
  $c->send_pkt(SUBMIT_JOB_BG, 'nm', '', 'x');
  $c->expect(JOB_CREATED, 30);
  $m[1]->kill('KILL');
  $m[2]->kill('KILL');
  my $v = wait_until(sub {
    my $x = $m[0]->cluster;
    return ($x && !grep { $_->{reachable} eq 'yes' } @{ $x->{members} }) ? $x : undef;
  }, 30);
  ok($v, 'with two of three nodes gone, cluster on the third answers, every peer unreachable');
}

# --- the one-node default ----------------------------------------------------------
{
  my $one = start_server(need_own => 1);
  my $v = $one->cluster;
  ok($v, 'the one-node default answers cluster');
  is_deeply([@{ $v->{node} }{qw(self leader role)}], ['local', 'local', 'leader'],
            '... as "local", its own leader');
  is(scalar @{ $v->{members} }, 1, '... with itself the only member');
  like($one->admin('cluster'),
       qr/\nname=local addr=- role=leader match=\d+ reachable=self\n\.\n\z/,
       '... no peer address, reachable=self');
  SKIP: {
    skip 'GEARRAFT is not set', 2 unless $ENV{GEARRAFT};
    my ($rc, $out) = gearraft_run('-h', '127.0.0.1', '-p', $one->port, 'cluster');
    is($rc, 0, 'gearraft cluster against it: exit 0');
    like($out, qr/^local\s+-\s+leader\s+\d+\s+self$/m, '... one row, itself');
  }
}

done_testing();
