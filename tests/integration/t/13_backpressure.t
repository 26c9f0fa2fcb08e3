# SPDX-License-Identifier: BSD-3-Clause
# Back-pressure on a connection's output (node/gm_session.h,
# GM_SESSION_OUT_HIGH = 32 MiB). A client pipelines 1 MiB ECHO_REQs and
# never reads: the server must stop reading from it once its replies pile
# up, instead of buffering every echo until it runs out of memory. Other
# clients are answered meanwhile, the server's memory stays bounded, and
# when the client finally reads, every echo comes back whole and in order.
#
# Stock gearmand 1.1.x has no such limit (it buffers every reply), so the
# test skips there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select;
use Socket qw(SOL_SOCKET SO_SNDBUF SO_RCVBUF);
use Time::HiRes ();

plan(skip_all => 'output back-pressure is a gearraftd promise; stock '
                 . 'gearmand buffers every reply of a client that does not read')
  unless is_gearraftd();

my $MIB = 1 << 20;
my $N = 200;           # echoes pushed: 200 MiB, far past the 32 MiB mark
my $HIGH = 32 * $MIB;  # GM_SESSION_OUT_HIGH

# Under AddressSanitizer (the dev build) freed blocks sit in a quarantine
# of up to 256 MiB before reuse, which would hide what the server really
# keeps: make it small, so RSS reflects live memory.
$ENV{ASAN_OPTIONS} = join(':', grep({ defined && length } $ENV{ASAN_OPTIONS}),
                          'quarantine_size_mb=8');
my $srv = start_server(need_own => 1);
my $pid = $srv->pid;

sub rss_kib {
  open my $fh, '<', "/proc/$pid/status" or return undef;
  while (my $l = <$fh>) { return $1 if $l =~ /^VmRSS:\s+(\d+)\s+kB/; }
  return undef;
}

sub sysctl_max {
  my ($name) = @_;
  open my $fh, '<', "/proc/sys/net/ipv4/$name" or return 32 * $MIB;
  my @v = split ' ', scalar <$fh>;
  return $v[2];
}

# Echo i: its number at both ends around a filler that differs per echo,
# so a lost, reordered, truncated or spliced echo cannot compare equal.
my $filler = join('', map { pack('N', $_ * 2654435761 % 4294967296) } 0 .. ($MIB / 4) - 1);
sub payload {
  my ($i) = @_;
  my $tag = sprintf('<echo %05d>', $i);
  my $rot = ($i * 4099) % length $filler;
  my $body = substr($filler, $rot) . substr($filler, 0, $rot);
  return $tag . substr($body, 0, $MIB - 2 * length $tag) . $tag;
}
is(length payload(7), $MIB, 'each echo payload is 1 MiB');

# Warm up: the server has answered a first client, then note its RSS.
{
  my $c = $srv->conn;
  $c->send_pkt(ECHO_REQ, payload(0));
  is($c->expect(ECHO_RES, 30)->{data}, payload(0), 'warm-up: a 1 MiB echo round trip');
  $c->close;
}
my $rss0 = rss_kib();
ok(defined $rss0, "server RSS readable from /proc/$pid/status ($rss0 KiB)");

# The bad client: small client-side socket buffers, non-blocking writes.
my $bad = $srv->conn;
my $sock = $bad->sock;
setsockopt($sock, SOL_SOCKET, SO_SNDBUF, 256 * 1024);
setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 256 * 1024);
$sock->blocking(0);

my $next = 0;       # next echo to queue
my $pending = '';   # bytes of the current packet not yet written
my $accepted = 0;   # bytes the kernel took from us
sub write_some {
  while (1) {
    if ($pending eq '') {
      return 1 if $next >= $N;
      $pending = GRTest::Conn::encode(ECHO_REQ, payload($next++));
    }
    my $n = syswrite($sock, $pending);
    if (!defined $n) {
      next if $! == EINTR;
      return 0 if $! == EAGAIN || $! == EWOULDBLOCK;
      die "write: $!";
    }
    $accepted += $n;
    substr($pending, 0, $n) = '';
  }
}

# Push until the socket stays unwritable for STALL seconds: the server
# stopped reading. (A server without back-pressure keeps reading, so the
# loop would run to the end of the 200 MiB instead.) Before the replies
# can have reached the mark, a quiet socket only means a slow server:
# keep waiting then.
my $STALL = deadline_secs(3);
my $end = Time::HiRes::time() + deadline_secs(60);
my $stalled = 0;
my $wsel = IO::Select->new($sock);
while (Time::HiRes::time() < $end) {
  last if write_some();
  if (!$wsel->can_write($STALL) && $accepted > $HIGH) {
    $stalled = 1;
    last;
  }
}
ok($stalled, sprintf('the server stopped reading the client that does not read '
                     . '(after %.1f MiB accepted)', $accepted / $MIB));

# What the server may take before it stops: the 32 MiB mark, one echo
# past it, a read chunk and a partial frame buffered, and the kernel
# buffers between us: its receive buffer (autotuned up to tcp_rmem max),
# its send buffer and ours holding replies (up to tcp_wmem max each; ours
# are set small above).
my $limit = $HIGH + 4 * $MIB + sysctl_max('tcp_rmem')
          + 2 * sysctl_max('tcp_wmem') + $MIB;
$limit = 100 * $MIB if $limit > 100 * $MIB;
cmp_ok($accepted, '<', $limit,
       sprintf('it accepted well under the %d MiB pushed (limit %.0f MiB)',
               $N, $limit / $MIB));

# Meanwhile a well-behaved client is answered at once.
{
  my $t0 = Time::HiRes::time();
  my $c = $srv->conn;
  $c->send_pkt(ECHO_REQ, 'still here');
  is($c->expect(ECHO_RES, 5)->{data}, 'still here', 'another client: ECHO round trip');
  $c->send_pkt(ECHO_REQ, payload(1));
  is($c->expect(ECHO_RES, 30)->{data}, payload(1), 'another client: 1 MiB ECHO round trip');
  is($c->admin('status'), ".\n", 'another client: admin status answers');
  my $dt = Time::HiRes::time() - $t0;
  cmp_ok($dt, '<', deadline_secs(5), sprintf('... promptly (%.2f s)', $dt));
  $c->close;
}

# While the bad client still reads nothing, the server's memory stays
# bounded: its queued replies (about 32 MiB) plus allocator slack, not the
# 200 MiB pushed or even what the kernel took.
my $rss1 = rss_kib();
my $grown = ($rss1 - $rss0) * 1024;
cmp_ok($grown, '<', 80 * $MIB,
       sprintf('server RSS grew by %.1f MiB only (%d -> %d KiB)',
               $grown / $MIB, $rss0, $rss1));
ok(!$wsel->can_write(0), 'the bad client is still not being read');

# Now read everything back (and write the rest); every echo must come
# back complete and in order.
my $rbuf = '';
my $got = 0;
my $wrong = 0;
my $first_wrong;
my $rsel = IO::Select->new($sock);
$end = Time::HiRes::time() + deadline_secs(120);
while ($got < $N && Time::HiRes::time() < $end) {
  write_some() if $next < $N || $pending ne '';
  my $want_w = ($next < $N || $pending ne '') ? $wsel : undef;
  my ($r) = IO::Select->select($rsel, $want_w, undef, 1);
  next unless $r && @$r;
  my $n = sysread($sock, $rbuf, 4 * $MIB, length $rbuf);
  if (!defined $n) {
    next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
    die "read: $!";
  }
  last if $n == 0;
  while (length($rbuf) >= 12) {
    my ($magic, $type, $len) = unpack('a4NN', $rbuf);
    last if length($rbuf) < 12 + $len;
    my $data = substr($rbuf, 12, $len);
    substr($rbuf, 0, 12 + $len) = '';
    if ($magic ne "\0RES" || $type != ECHO_RES || $data ne payload($got)) {
      $wrong++;
      $first_wrong //= sprintf('reply %d: %s type %d, %d bytes, starts %s', $got,
                               $magic eq "\0RES" ? 'RES' : 'bad magic', $type,
                               $len, substr($data, 0, 12));
    }
    $got++;
  }
}
is($got, $N, "all $N echoes came back once the client read");
is($wrong, 0, 'every echo complete and in order')
  or diag($first_wrong);
is($rbuf, '', 'nothing extra after the last echo');

# The session resumed reading for good: one more round trip on it.
$sock->blocking(1);
$bad->send_pkt(ECHO_REQ, 'after');
is($bad->expect(ECHO_RES, 10)->{data}, 'after', 'the same connection works normally again');
$bad->close;
ok($srv->alive, 'server still running');


# A worker streaming WORK_DATA to a foreground client that does not read:
# the worker stops being read once the client's backlog passes the mark
# (so it cannot fill the server's memory through someone else's socket),
# and both go on once the client reads.
{
  my $NS = 100;   # 100 x 1 MiB of WORK_DATA
  my $client = $srv->conn;
  my $csock = $client->sock;
  setsockopt($csock, SOL_SOCKET, SO_RCVBUF, 256 * 1024);
  my $worker = $srv->conn;
  $worker->can_do('bp_stream');
  $client->send_pkt(SUBMIT_JOB, 'bp_stream', '', 'go');
  my $h = $client->expect(JOB_CREATED)->{data};
  my $a = $worker->grab;
  is($a->{args}[0], $h, 'stream: the worker got the job');

  my $wsock = $worker->sock;
  setsockopt($wsock, SOL_SOCKET, SO_SNDBUF, 256 * 1024);
  $wsock->blocking(0);
  my ($wnext, $wpend, $wacc) = (0, '', 0);
  my $wdone = sub {
    while (1) {
      if ($wpend eq '') {
        return 1 if $wnext > $NS;
        $wpend = $wnext < $NS
               ? GRTest::Conn::encode(WORK_DATA, $h, payload($wnext))
               : GRTest::Conn::encode(WORK_COMPLETE, $h, 'end');
        $wnext++;
      }
      my $n = syswrite($wsock, $wpend);
      if (!defined $n) {
        next if $! == EINTR;
        return 0 if $! == EAGAIN || $! == EWOULDBLOCK;
        die "worker write: $!";
      }
      $wacc += $n;
      substr($wpend, 0, $n) = '';
    }
  };
  my $wsel2 = IO::Select->new($wsock);
  my $stall = 0;
  my $until = Time::HiRes::time() + deadline_secs(60);
  while (Time::HiRes::time() < $until) {
    last if $wdone->();
    if (!$wsel2->can_write($STALL) && $wacc > $HIGH) { $stall = 1; last; }
  }
  ok($stall, sprintf('stream: the server stopped reading the worker '
                     . '(after %.1f MiB of WORK_DATA)', $wacc / $MIB));
  cmp_ok($wacc, '<', $limit, 'stream: well under the 100 MiB the worker had');
  my $t = $srv->conn;
  $t->sync;
  pass('stream: other clients are served meanwhile');
  $t->close;

  # The client reads: every WORK_DATA in order, then WORK_COMPLETE, while
  # the worker writes the rest.
  $csock->blocking(0);
  my ($cbuf, $cgot, $cbad, $complete) = ('', 0, 0, 0);
  my $csel = IO::Select->new($csock);
  $until = Time::HiRes::time() + deadline_secs(120);
  while (!$complete && Time::HiRes::time() < $until) {
    my $wopen = $wnext <= $NS || $wpend ne '';
    $wdone->() if $wopen;
    my ($r) = IO::Select->select($csel, $wopen ? $wsel2 : undef, undef, 1);
    next unless $r && @$r;
    my $n = sysread($csock, $cbuf, 4 * $MIB, length $cbuf);
    if (!defined $n) {
      next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
      die "client read: $!";
    }
    last if $n == 0;
    while (length($cbuf) >= 12) {
      my ($magic, $type, $len) = unpack('a4NN', $cbuf);
      last if length($cbuf) < 12 + $len;
      my $data = substr($cbuf, 12, $len);
      substr($cbuf, 0, 12 + $len) = '';
      if ($type == WORK_COMPLETE) {
        $complete = $data eq "$h\0end";
        last;
      }
      $cbad++ unless $type == WORK_DATA && $data eq "$h\0" . payload($cgot);
      $cgot++;
    }
  }
  is($cgot, $NS, "stream: the client got all $NS WORK_DATA once it read");
  is($cbad, 0, 'stream: each complete and in order');
  ok($complete, 'stream: then WORK_COMPLETE');
  $client->close;
  $worker->close;
}

done_testing();
