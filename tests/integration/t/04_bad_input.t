# SPDX-License-Identifier: BSD-3-Clause
# Packets the server refuses: ALL_YOURS and SUBMIT_JOB_SCHED get ERROR,
# a request with \0RES magic gets ERROR and the connection stays open,
# bad magic and unknown types close the connection, and none of it
# disturbs other sessions or queued jobs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server();
my $bystander = $srv->conn;
my $h = $bystander->submit(SUBMIT_JOB_BG, 'keep', 'k1', 'kept');

sub refused {
  my ($type, $what, @args) = @_;
  my $c = $srv->conn;
  $c->send_pkt($type, @args);
  my $e = $c->expect(ERROR);
  is($e->{args}[0], 'INVALID_COMMAND', "$what -> ERROR INVALID_COMMAND");
  is($e->{args}[1], 'Command not expected', "$what -> text 'Command not expected'");
  $c->sync;
  pass("$what: connection stays open");
  $c->close;
}

refused(ALL_YOURS, 'ALL_YOURS');
refused(SUBMIT_JOB_SCHED, 'SUBMIT_JOB_SCHED', 'sched', 'su', 1, 2, 3, 4, 5, 'data');
refused(5, 'unused type 5');
refused(JOB_CREATED, 'response-only type JOB_CREATED sent as request', 'H:x:1');
refused(NO_JOB, 'response-only type NO_JOB');
is_deeply($srv->status->{sched}, undef, 'SUBMIT_JOB_SCHED queued nothing');

# \0RES magic on a request.
{
  my $c = $srv->conn;
  $c->send_raw("\0RES" . pack('NN', ECHO_REQ, 2) . 'hi');
  my $e = $c->expect(ERROR);
  is($e->{args}[0], 'INVALID_MAGIC', '\\0RES request -> ERROR INVALID_MAGIC');
  is($e->{args}[1], 'Request magic expected', 'INVALID_MAGIC text');
  $c->sync;
  pass('connection stays open after INVALID_MAGIC');
  $c->close;
}

# Bad magic: the connection is closed.
{
  my $c = $srv->conn;
  $c->send_raw("\0XYZ" . pack('NN', ECHO_REQ, 2) . 'hi');
  ok($c->closed(5), 'bad magic closes the connection');
  $c->close;
}

# Unknown type numbers: the connection is closed.
for my $t (43, 1000, 65535, 0xFFFFFFFF) {
  if ($t == 0xFFFFFFFF && is_gearmand()) {
    # Seen on 1.1.20: this type makes the whole gearmand process exit.
    note('type 0xFFFFFFFF not sent to gearmand: it crashes the server');
    next;
  }
  my $c = $srv->conn;
  $c->send_raw("\0REQ" . pack('NN', $t, 0));
  ok($c->closed(5), "unknown type $t closes the connection");
  ok($srv->external || $srv->alive, "unknown type $t: the server stays up");
  $c->close;
}

# Nothing else was disturbed.
$bystander->sync;
pass('an unrelated connection still works');
my $w = $srv->conn;
$w->can_do('keep');
is_deeply($w->grab->{args}, [$h, 'keep', 'kept'], 'the queued job is still there');
$w->send_pkt(WORK_COMPLETE, $h, '');
$w->sync;

# Unique key length limits (gearmand: 64+ bytes refused).
{
  my $c = $srv->conn;
  $c->send_pkt(SUBMIT_JOB_BG, 'lim', 'u' x 65, 'x');
  my $e = $c->expect(ERROR);
  is($e->{args}[0], 'ARGUMENT_TOO_LARGE', 'unique of 65 bytes -> ERROR ARGUMENT_TOO_LARGE');
  is($e->{args}[1], 'Unique value too large', 'ARGUMENT_TOO_LARGE text');
  my $hh = $c->submit(SUBMIT_JOB_BG, 'lim', 'u' x 63, 'x');
  ok($hh, 'unique of 63 bytes accepted');
  $c->close;
}

$w->close;
$bystander->close;
done_testing();
