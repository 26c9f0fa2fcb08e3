# SPDX-License-Identifier: BSD-3-Clause
# A client that sends its requests and then shuts down its sending side
# (as `echo status | nc -N host 4730` and many monitoring scripts do)
# still gets every answer, then the server closes: a background
# submission gets its JOB_CREATED, an echo its reply, an admin command its
# text - and the job is queued.
#
# Stock gearmand 1.1.20 queues the job but answers only now and then (2
# times in 40 on the project machine: its reader sees the EOF and drops
# the connection before the replies go out), so the test skips there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use Socket qw(SHUT_WR);

plan(skip_all => 'gearmand drops most replies after a half-close')
  unless is_gearraftd();

my $srv = start_server();

# Binary requests, then half-close.
{
  my $c = $srv->conn;
  $c->send_raw(GRTest::Conn::encode(SUBMIT_JOB_BG, 'halfclose', '', 'p1')
               . GRTest::Conn::encode(ECHO_REQ, 'after-submit'));
  shutdown($c->sock, SHUT_WR) or die "shutdown: $!";
  my $created = $c->expect(JOB_CREATED);
  like($created->{args}[0], qr/\AH:/, 'JOB_CREATED after the client shut down its side');
  my $echo = $c->expect(ECHO_RES);
  is($echo->{data}, 'after-submit', 'the echo that followed is answered too');
  ok($c->closed, 'then the server closes the connection');
  $c->close;
}

# An admin command, then half-close, while a submission is in flight on
# the same connection (the admin read waits for it).
{
  my $c = $srv->conn;
  $c->send_raw(GRTest::Conn::encode(SUBMIT_JOB_BG, 'halfclose', '', 'p2')
               . "status\n");
  shutdown($c->sock, SHUT_WR) or die "shutdown: $!";
  $c->expect(JOB_CREATED);
  ok($c->closed, 'the server closes after answering');
  like($c->{buf}, qr/^halfclose\t2\t0\t0\n\.\n\z/m,
       'status, answered after the half-close, counts both jobs');
  $c->close;
}

is($srv->status->{halfclose}[0], 2, 'both jobs are queued');
done_testing();
