# SPDX-License-Identifier: BSD-3-Clause
# The byte stream: packets and admin lines split into 1-byte writes, many
# packets in one write, an 8 MiB payload both ways, and 100 connections at
# once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use Time::HiRes ();

my $srv = start_server();

# Write BYTES one byte per write, letting each byte leave on its own.
sub dribble {
  my ($c, $bytes) = @_;
  for my $i (0 .. length($bytes) - 1) {
    $c->send_raw(substr($bytes, $i, 1));
    Time::HiRes::usleep(200) if $i % 7 == 0;    # vary the segment boundaries
  }
}

{
  my $c = $srv->conn;
  dribble($c, GRTest::Conn::encode(ECHO_REQ, "a\0b"));
  is($c->expect(ECHO_RES)->{data}, "a\0b", 'ECHO_REQ sent one byte at a time');
  dribble($c, GRTest::Conn::encode(SUBMIT_JOB_BG, 'drib', 'du', "pay\0load"));
  my $h = $c->expect(JOB_CREATED)->{data};
  ok($h, 'SUBMIT_JOB_BG sent one byte at a time: JOB_CREATED');
  dribble($c, "status\r\n");
  is($c->read_admin, "drib\t1\t0\t0\n.\n", 'admin "status\\r\\n" sent one byte at a time');
  my $w = $srv->conn;
  dribble($w, GRTest::Conn::encode(CAN_DO, 'drib') . GRTest::Conn::encode(GRAB_JOB_UNIQ));
  is_deeply($w->expect(JOB_ASSIGN_UNIQ)->{args}, [$h, 'drib', 'du', "pay\0load"],
            'CAN_DO + GRAB_JOB_UNIQ dribbled: the job, bytes intact');
  dribble($w, GRTest::Conn::encode(WORK_COMPLETE, $h, 'r'));
  $w->sync;
  is_deeply($srv->status->{drib}, [0, 0, 1], 'WORK_COMPLETE dribbled: job done');
  $c->close;
  $w->close;
}

# Binary packets and an admin line in one write.
{
  my $c = $srv->conn;
  $c->send_raw(GRTest::Conn::encode(ECHO_REQ, 'one') . "version\n"
               . GRTest::Conn::encode(ECHO_REQ, 'two'));
  is($c->expect(ECHO_RES)->{data}, 'one', 'first packet of a mixed write');
  like($c->read_admin, qr/\AOK \S+\n\z/, 'admin line in the middle');
  is($c->expect(ECHO_RES)->{data}, 'two', 'last packet of a mixed write');
  $c->close;
}

# 8 MiB payload in and out.
{
  my $big = join('', map { pack('N', $_ * 2654435761 % 4294967296) } 0 .. (2 << 20) - 1);
  is(length $big, 8 << 20, '8 MiB payload built');
  my $c = $srv->conn;
  my $h = $c->submit(SUBMIT_JOB, 'big', '', $big);
  my $w = $srv->conn;
  $w->can_do('big');
  my $a = $w->grab;
  ok($a->{args}[2] eq $big, 'the worker receives the 8 MiB payload intact');
  $w->send_pkt(WORK_COMPLETE, $h, $big);
  my $p = $c->read_pkt(30);
  ok($p && $p->{data} eq "$h\0$big", 'the client receives the 8 MiB result intact');
  $c->close;
  $w->close;
}

# 100 connections at once, each with a foreground job.
{
  my @c = map { $srv->conn } 1 .. 100;
  my %h;
  for my $i (0 .. $#c) {
    $c[$i]->send_pkt(SUBMIT_JOB, 'many', '', "m$i");
  }
  for my $i (0 .. $#c) {
    $h{ $c[$i]->expect(JOB_CREATED)->{data} } = $i;
  }
  is(scalar(keys %h), 100, '100 connections: 100 distinct handles');
  my $w = $srv->conn;
  $w->can_do('many');
  for (1 .. 100) {
    my $a = $w->grab;
    $w->send_pkt(WORK_COMPLETE, $a->{args}[0], "r-$a->{args}[2]");
  }
  my $ok = 0;
  for my $i (0 .. $#c) {
    my $p = $c[$i]->expect(WORK_COMPLETE);
    my ($h, $r) = split /\0/, $p->{data}, 2;
    $ok++ if defined $h{$h} && $h{$h} == $i && $r eq "r-m$i";
  }
  is($ok, 100, 'each of the 100 clients gets its own result');
  $_->close for @c, $w;
}

done_testing();
