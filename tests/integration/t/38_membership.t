# SPDX-License-Identifier: BSD-3-Clause
# Membership at run time under load (README.md, "Cluster"; docs/protocol.md,
# "Admin lines"): a client submits background jobs all along, one fresh
# connection each, in turn through every live node, and keeps the handle
# of every JOB_CREATED. Meanwhile: a fourth node started with --join is
# added from a follower (gearraft add), catches up as a learner, takes a
# job, is promoted; refusals say why (a name already a member, an unknown
# one, a voter promoted again, a transfer to the leader itself); a node is
# removed; leadership moves to a named node; a node is removed, its
# directory wiped, and it rejoins under a new name by a snapshot (after a
# burst of submissions longer than the leader's in-memory window), its
# old name refused; then every node is restarted in
# turn, leadership moved off each first. At the end one worker drains the
# queue: every acknowledged handle is handed out, none lost.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Path ();
use File::Temp ();
use GRTest;
use POSIX ();
use Test::More;
use Time::HiRes ();

my @common = ('--snapshot-every', 20);
my @n = start_cluster(3, args => \@common);
my $tool = $ENV{GEARRAFT};
my $tmp = File::Temp::tempdir('gr-member-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $t0 = Time::HiRes::time();

# The nodes the load goes through: one port per line, rewritten as nodes
# come and go.
my %live = map { $_->{name} => $_ } @n;
sub set_live {
  open my $fh, '>', "$tmp/ports.new" or die $!;
  print $fh map { $_->port . "\n" } values %live;
  close $fh;
  rename "$tmp/ports.new", "$tmp/ports" or die $!;
}
set_live();

# --- the load: a child process ------------------------------------------------
my $load = fork() // die "fork: $!";
if ($load == 0) {
  open my $acked, '>>', "$tmp/acked" or POSIX::_exit(1);
  $acked->autoflush(1);
  my ($i, $k) = (0, 0);
  until (-e "$tmp/stop") {
    open my $pf, '<', "$tmp/ports" or next;
    my @ports = map { chomp; $_ } <$pf>;
    close $pf;
    my $port = $ports[$k++ % @ports];
    my $ok = eval {
      my $c = GRTest::Conn->new(bless { host => '127.0.0.1', port => $port },
                                'GRTest::Server');
      $c->send_pkt(SUBMIT_JOB_BG, 'mload', '', 'job-' . ++$i);
      my $p = $c->read_pkt(5);
      $c->close;
      print $acked "$p->{data}\n" if $p && $p->{type} == JOB_CREATED;
      1;
    };
    select(undef, undef, undef, 0.01);
  }
  POSIX::_exit(0);
}
sub n_acked {
  open my $fh, '<', "$tmp/acked" or return 0;
  my @l = <$fh>;
  return scalar @l;
}

# --- helpers ------------------------------------------------------------------
sub view { my ($s) = @_; return eval { $s->cluster }; }
sub leader_name {
  for my $s (values %live) {
    my $v = view($s) or next;
    return $v->{node}{self} if $v->{node}{role} eq 'leader';
  }
  return undef;
}
sub leader_node { my $l = wait_until(\&leader_name, 15); return $l ? $live{$l} : undef; }
sub change {
  my ($s, $line) = @_;
  my $r = eval { $s->conn->admin($line, timeout => 10) } // "no reply: $@";
  return $r;
}
# The leader's view once every live node is a member it sees reachable and
# matched up to its last index.
sub settled {
  my ($want) = @_;
  return wait_until(sub {
    my $l = leader_name() or return undef;
    my $v = view($live{$l}) or return undef;
    my %m = map { $_->{name} => $_ } @{ $v->{members} };
    return undef unless join(',', sort keys %m) eq join(',', sort @$want);
    for my $name (@$want) {
      return undef unless $m{$name}{reachable} =~ /\A(?:yes|self)\z/;
      return undef unless $m{$name}{match} eq $v->{node}{last};
    }
    return $v;
  }, 30);
}
# promote, asked again while the learner is behind (or the add is not
# committed yet); the last reply.
sub promote {
  my ($s, $name, $secs) = @_;
  my $last = '';
  wait_until(sub {
    $last = change($s, "promote $name");
    return $last !~ /NOT_CAUGHT_UP|CHANGE_IN_PROGRESS/;
  }, $secs);
  return $last;
}
sub role_of {
  my ($v, $name) = @_;
  my ($m) = grep { $_->{name} eq $name } @{ $v->{members} };
  return $m ? $m->{role} : 'none';
}

ok(wait_until(sub { n_acked() >= 20 }, 30), 'the load runs: jobs acknowledged')
  or BAIL_OUT('no job acknowledged');
ok(settled([qw(n1 n2 n3)]), 'three founders settled');

# --- a fourth node joins --------------------------------------------------------
my $p4 = free_port();
my $join = join(',', map { "$_->{name}=$_->{peer}" } @n);
my $n4 = GRTest::start_server(need_own => 1,
  args => ['--node-id', 'n4', '--peer-listen', "127.0.0.1:$p4", '--join', $join, @common]);
$n4->{name} = 'n4';
$n4->{peer} = "127.0.0.1:$p4";
like(view($n4)->{node}{role}, qr/\A(?:follower|learner)\z/, 'n4 runs, waiting to be added');

my $l = leader_node();
my ($f) = grep { $_ != $l } values %live;
if ($tool) {
  my ($rc, $out, $err) = gearraft_run('-h', '127.0.0.1', '-p', $f->port, 'add', 'n4', "127.0.0.1:$p4");
  is($rc, 0, "gearraft add n4 through follower $f->{name}: exit 0") or diag $err;
  like($out, qr/\Aadd n4 127\.0\.0\.1:$p4: done\n\z/, '... says it is done');
  ($rc, $out, $err) = gearraft_run('-h', '127.0.0.1', '-p', $f->port, 'add', 'n4', "127.0.0.1:$p4");
  is($rc, 1, 'gearraft add n4 again: exit 1');
  like($err, qr/refused: ALREADY_MEMBER /, '... a member already');
} else {
  is(change($f, "add n4 127.0.0.1:$p4"), "OK\r\n", "add n4 through follower $f->{name}");
}
$live{n4} = $n4;
like(change($f, 'remove nobody'), qr/\AERR UNKNOWN_MEMBER /, 'removing an unknown name is refused');
like(change($f, 'add n5 not-an-address'), qr/\AERR INVALID_ARGUMENTS /, 'a bad address is refused');

my $caught = wait_until(sub {
  my $v = view($n4) or return undef;
  my $lv = view(leader_node()) or return undef;
  return $v->{node}{role} eq 'learner' && $v->{node}{applied} >= $lv->{node}{commit} - 5 ? $v : undef;
}, 30);
ok($caught, 'n4 caught up as a learner');
is(role_of(view(leader_node()), 'n4'), 'learner', "the leader lists n4 as a learner");
ok($n4->submit_accepted('mjoin', 'through-n4'), 'a job submitted through n4 is acknowledged');

is(promote($f, 'n4', 20), "OK\r\n", 'promote n4 (asked again while it catches up)');
like(change($l, 'promote n4'), qr/\AERR ALREADY_VOTER /, 'promoting a voter again is refused');
ok(settled([qw(n1 n2 n3 n4)]), 'four voters, all matched');

# --- remove a follower ---------------------------------------------------------
$l = leader_node();
my ($gone) = grep { $_ != $l && $_->{name} ne 'n4' } values %live;
my $gname = $gone->{name};
is(change($n4, "remove $gname"), "OK\r\n", "remove $gname through n4");
delete $live{$gname};
set_live();
$gone->stop;
ok(settled([grep { $_ ne $gname } qw(n1 n2 n3 n4)]), "$gname is gone from the configuration");

# --- transfer leadership to a named node --------------------------------------
$l = leader_node();
my ($to) = grep { $_ != $l } values %live;
like(change($l, "transfer $l->{name}"), qr/\AERR ALREADY_LEADER /, 'a transfer to the leader itself is refused');
is(change($to, "transfer $to->{name}"), "OK\r\n", "transfer to $to->{name}");
ok(wait_until(sub { (leader_name() // '') eq $to->{name} }, 15), "$to->{name} leads");

# --- a node wiped rejoins under a new name -------------------------------------
$l = leader_node();
my ($w) = grep { $_ != $l } values %live;
my $old = $w->{name};
is(change($l, "remove $old"), "OK\r\n", "remove $old");
delete $live{$old};
set_live();
$w->stop;
File::Path::remove_tree($w->datadir);
# More entries than a leader keeps in memory (1,024) behind its latest
# snapshot: the rejoining node can only catch up by a snapshot.
my @burst;
{
  my $c = $l->conn;
  for my $round (1 .. 13) {
    $c->send_pkt(SUBMIT_JOB_BG, 'mload', '', "burst-$round-$_") for 1 .. 100;
    push @burst, map { $c->expect(JOB_CREATED, 20)->{data} } 1 .. 100;
  }
  $c->close;
}
is(scalar @burst, 1300, 'a burst of 1,300 jobs acknowledged');
my $pw = free_port();
my $new = "${old}b";
my $join2 = join(',', map { "$_->{name}=$_->{peer}" } values %live);
$w->{args} = ['--node-id', $new, '--peer-listen', "127.0.0.1:$pw", '--join', $join2,
              '--verbose', 'NOTICE', @common];
$w->start_again;
$w->{name} = $new;
$w->{peer} = "127.0.0.1:$pw";
like(change($l, "add $old 127.0.0.1:$pw"), qr/\AERR NAME_USED /, "its old name $old is refused");
is(change($l, "add $new 127.0.0.1:$pw"), "OK\r\n", "add it back as $new");
$live{$new} = $w;
is(promote($l, $new, 30), "OK\r\n", "$new caught up and is promoted");
ok(wait_until(sub {
  open my $lf, '<', $w->{log} or return 0;
  return grep { /installed the leader's snapshot/ } <$lf>;
}, 10), "... by the leader's snapshot");
set_live();
my @names = sort keys %live;
ok(settled(\@names), "voters @names, all matched");

note(sprintf('rolling restart starts at %.1f s', Time::HiRes::time() - $t0));
# --- a rolling restart -----------------------------------------------------------
for my $name (@names) {
  my $s = $live{$name};
  if ((leader_name() // '') eq $name) {
    is(change($s, 'transfer'), "OK\r\n", "transfer off $name");
    ok(wait_until(sub { my $x = leader_name(); $x && $x ne $name }, 15), '... another node leads');
  }
  delete $live{$name};
  set_live();
  my $st = $s->stop(15);
  is($st, 0, "$name stopped cleanly");
  $s->start_again;
  $live{$name} = $s;
  set_live();
  ok(settled(\@names), "$name is back and caught up");
}

# --- nothing lost -------------------------------------------------------------------
open my $stop, '>', "$tmp/stop" or die $!;
close $stop;
waitpid($load, 0);
open my $fh, '<', "$tmp/acked" or die $!;
my @acked = map { chomp; $_ } <$fh>;
close $fh;
push @acked, @burst;
cmp_ok(scalar @acked - @burst, '>=', 50,
       'jobs acknowledged under load: ' . (@acked - @burst));

note(sprintf('drain starts at %.1f s', Time::HiRes::time() - $t0));
# Sixteen workers, each with one GRAB_JOB outstanding, so that their grabs
# share the leader's write batches; one that hears NO_JOB stops.
my %handed;
my $ln = leader_node();
my @wk = map { $ln->conn } 1 .. 16;
$_->can_do('mload') for @wk;
$_->send_pkt(GRAB_JOB) for @wk;
my %busy = map { $_ => 1 } 0 .. $#wk;
while (%busy) {
  for my $i (sort keys %busy) {
    my $p = $wk[$i]->read_pkt(10);
    if (!$p || $p->{type} != JOB_ASSIGN) {
      delete $busy{$i};
      next;
    }
    my ($h) = @{ $p->{args} };
    $handed{$h} = 1;
    $wk[$i]->send_pkt(WORK_COMPLETE, $h, '');
    $wk[$i]->send_pkt(GRAB_JOB);
  }
}
my @lost = grep { !$handed{$_} } @acked;
is(scalar @lost, 0, 'every acknowledged job was handed out to the worker')
  or diag('lost: ' . join(' ', @lost[0 .. ($#lost < 9 ? $#lost : 9)]));
note(sprintf('%d jobs, %.1f s', scalar @acked, Time::HiRes::time() - $t0));

done_testing();
