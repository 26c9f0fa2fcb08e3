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

# Writes packets to a non-blocking socket: $next_packet->() gives the
# next one's bytes, undef at the end. ->{pump}->() writes until the socket
# is full (returns 0) or everything is written (returns 1, and {done} is
# set); {bytes} counts what the kernel took.
sub packet_writer {
  my ($sock, $next_packet) = @_;
  my $w = {sock => $sock, pending => '', bytes => 0, done => 0};
  $w->{pump} = sub {
    while (1) {
      if ($w->{pending} eq '') {
        my $p = $next_packet->();
        return $w->{done} = 1 unless defined $p;
        $w->{pending} = $p;
      }
      my $n = syswrite($sock, $w->{pending});
      if (!defined $n) {
        next if $! == EINTR;
        return 0 if $! == EAGAIN || $! == EWOULDBLOCK;
        die "write: $!";
      }
      $w->{bytes} += $n;
      substr($w->{pending}, 0, $n) = '';
    }
  };
  return $w;
}

# Reads frames from the non-blocking $sock until $done->() or the
# deadline, pumping writer $w (when given and not done) in between.
# Each whole frame goes to $on_frame->($magic, $type, $data), which
# returns false to leave the rest buffered. Returns the bytes left.
sub read_frames {
  my ($sock, $w, $on_frame, $done, $secs) = @_;
  my $buf = '';
  my $rsel = IO::Select->new($sock);
  my $wsel = $w ? IO::Select->new($w->{sock}) : undef;
  my $end = Time::HiRes::time() + deadline_secs($secs);
  FRAMES: while (!$done->() && Time::HiRes::time() < $end) {
    my $writing = $w && !$w->{done};
    $w->{pump}->() if $writing;
    my ($r) = IO::Select->select($rsel, $writing ? $wsel : undef, undef, 1);
    next unless $r && @$r;
    my $n = sysread($sock, $buf, 4 * $MIB, length $buf);
    if (!defined $n) {
      next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
      die "read: $!";
    }
    last if $n == 0;
    while (length($buf) >= 12) {
      my ($magic, $type, $len) = unpack('a4NN', $buf);
      last if length($buf) < 12 + $len;
      my $data = substr($buf, 12, $len);
      substr($buf, 0, 12 + $len) = '';
      next FRAMES unless $on_frame->($magic, $type, $data);
    }
  }
  return $buf;
}

# The bad client: small client-side socket buffers, non-blocking writes.
my $bad = $srv->conn;
my $sock = $bad->sock;
setsockopt($sock, SOL_SOCKET, SO_SNDBUF, 256 * 1024);
setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 256 * 1024);
$sock->blocking(0);

my $next = 0;       # next echo to queue
my $bw = packet_writer($sock, sub {
  return $next < $N ? GRTest::Conn::encode(ECHO_REQ, payload($next++)) : undef;
});

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
  last if $bw->{pump}->();
  if (!$wsel->can_write($STALL) && $bw->{bytes} > $HIGH) {
    $stalled = 1;
    last;
  }
}
ok($stalled, sprintf('the server stopped reading the client that does not read '
                     . '(after %.1f MiB accepted)', $bw->{bytes} / $MIB));

# What the server may take before it stops: the 32 MiB mark, one echo
# past it, a read chunk and a partial frame buffered, and the kernel
# buffers between us: its receive buffer (autotuned up to tcp_rmem max),
# its send buffer and ours holding replies (up to tcp_wmem max each; ours
# are set small above).
my $limit = $HIGH + 4 * $MIB + sysctl_max('tcp_rmem')
          + 2 * sysctl_max('tcp_wmem') + $MIB;
$limit = 100 * $MIB if $limit > 100 * $MIB;
cmp_ok($bw->{bytes}, '<', $limit,
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
my $got = 0;
my $wrong = 0;
my $first_wrong;
my $rbuf = read_frames($sock, $bw, sub {
  my ($magic, $type, $data) = @_;
  if ($magic ne "\0RES" || $type != ECHO_RES || $data ne payload($got)) {
    $wrong++;
    $first_wrong //= sprintf('reply %d: %s type %d, %d bytes, starts %s', $got,
                             $magic eq "\0RES" ? 'RES' : 'bad magic', $type,
                             length $data, substr($data, 0, 12));
  }
  $got++;
  return 1;
}, sub { $got >= $N }, 120);
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
  my $wnext = 0;
  my $ww = packet_writer($wsock, sub {
    return undef if $wnext > $NS;
    my $i = $wnext++;
    return $i < $NS ? GRTest::Conn::encode(WORK_DATA, $h, payload($i))
                    : GRTest::Conn::encode(WORK_COMPLETE, $h, 'end');
  });
  my $wsel2 = IO::Select->new($wsock);
  my $stall = 0;
  my $until = Time::HiRes::time() + deadline_secs(60);
  while (Time::HiRes::time() < $until) {
    last if $ww->{pump}->();
    if (!$wsel2->can_write($STALL) && $ww->{bytes} > $HIGH) { $stall = 1; last; }
  }
  ok($stall, sprintf('stream: the server stopped reading the worker '
                     . '(after %.1f MiB of WORK_DATA)', $ww->{bytes} / $MIB));
  cmp_ok($ww->{bytes}, '<', $limit, 'stream: well under the 100 MiB the worker had');
  my $t = $srv->conn;
  $t->sync;
  pass('stream: other clients are served meanwhile');
  $t->close;

  # The client reads: every WORK_DATA in order, then WORK_COMPLETE, while
  # the worker writes the rest.
  $csock->blocking(0);
  my ($cgot, $cbad, $complete) = (0, 0, 0);
  read_frames($csock, $ww, sub {
    my ($magic, $type, $data) = @_;
    if ($type == WORK_COMPLETE) {
      $complete = $data eq "$h\0end";
      return 0;
    }
    $cbad++ unless $type == WORK_DATA && $data eq "$h\0" . payload($cgot);
    $cgot++;
    return 1;
  }, sub { $complete }, 120);
  is($cgot, $NS, "stream: the client got all $NS WORK_DATA once it read");
  is($cbad, 0, 'stream: each complete and in order');
  ok($complete, 'stream: then WORK_COMPLETE');
  $client->close;
  $worker->close;
}

# A client that leaves with megabytes of results still queued for it.
# Payloads over 64 KiB go out by reference to the batch's own copy; they
# must be released with the client's output - under the sanitizers a
# leak or a use after free makes the server's exit status non-zero.
{
  my $client = $srv->conn;
  setsockopt($client->sock, SOL_SOCKET, SO_RCVBUF, 64 * 1024);
  my $worker = $srv->conn;
  $worker->can_do('bp_leave');
  $client->send_pkt(SUBMIT_JOB, 'bp_leave', '', 'go');
  my $h = $client->expect(JOB_CREATED)->{data};
  is($worker->grab->{args}[0], $h, 'leave: the worker got the job');
  $worker->send_pkt(WORK_DATA, $h, payload($_)) for 0 .. 7;
  $worker->sync;    # the eight are forwarded: most wait in the server
  $client->close;
  $worker->send_pkt(WORK_COMPLETE, $h, 'end');
  $worker->sync;
  ok($srv->alive, 'leave: the server goes on after the client left');
  $worker->close;
}
is($srv->stop, 0, 'the server stops cleanly (exit status 0)');

done_testing();
