# SPDX-License-Identifier: BSD-3-Clause
# Every SUBMIT_JOB variant over raw sockets: JOB_CREATED for each, in
# order, the priority each type implies, background vs foreground, and
# what each GRAB_JOB variant hands out.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;

my $srv = start_server();

sub handle_ok {
  my ($h, $what) = @_;
  ok(length($h) > 0 && length($h) < 64 && $h !~ /\0/,
     "$what: handle is a non-empty string under 64 bytes");
  if (is_gearmand()) {
    like($h, qr/\AH:[^:]+:\d+\z/, "$what: gearmand handle is H:<host>:<n>");
  }
}

# --- each variant answers JOB_CREATED, with the priority of its type ------
my %prio = (
  SUBMIT_JOB() => 1, SUBMIT_JOB_BG() => 1, SUBMIT_JOB_HIGH() => 0,
  SUBMIT_JOB_HIGH_BG() => 0, SUBMIT_JOB_LOW() => 2, SUBMIT_JOB_LOW_BG() => 2,
);
my %seen_handles;
for my $type (sort { $a <=> $b } keys %prio) {
  my $f = 'sub_' . pkt_name($type);
  my $c = $srv->conn;
  my $h = $c->submit($type, $f, '', "payload-$type");
  handle_ok($h, pkt_name($type));
  ok(!$seen_handles{$h}++, pkt_name($type) . ': handle not reused');
  my $ps = $srv->prioritystatus->{$f};
  my @want = (0, 0, 0, 0);
  $want[$prio{$type}] = 1;
  is_deeply($ps, [map { "$_" } @want],
            pkt_name($type) . ': prioritystatus shows it in the right column');
  is_deeply($srv->status->{$f}, [1, 0, 0], pkt_name($type) . ': status 1 0 0');
  # The worker gets exactly the bytes submitted.
  my $w = $srv->conn;
  $w->can_do($f);
  my $a = $w->grab;
  is($a->{name}, 'JOB_ASSIGN', pkt_name($type) . ': GRAB_JOB -> JOB_ASSIGN');
  is_deeply($a->{args}, [$h, $f, "payload-$type"],
            pkt_name($type) . ': JOB_ASSIGN is handle, function, data');
  $w->send_pkt(WORK_COMPLETE, $h, "done-$type");
  if ($type == SUBMIT_JOB || $type == SUBMIT_JOB_HIGH || $type == SUBMIT_JOB_LOW) {
    my $p = $c->expect(WORK_COMPLETE);
    is($p->{data}, "$h\0done-$type",
       pkt_name($type) . ': foreground client gets WORK_COMPLETE handle, data');
  } else {
    $w->sync;
    ok($c->quiet(0.3), pkt_name($type) . ': background client is told nothing');
  }
  $w->sync;
  is_deeply(wait_until(sub { my $st = $srv->status->{$f};
                             $st && $st->[0] == 0 ? $st : undef }, 5),
            [0, 0, 1], pkt_name($type) . ': status 0 0 1 after completion');
  $w->close;
  $c->close;
}

# --- JOB_CREATED comes back in submission order when pipelined -------------
{
  my $c = $srv->conn;
  my @types = (SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_LOW_BG,
               SUBMIT_JOB_BG, SUBMIT_JOB, SUBMIT_JOB_HIGH, SUBMIT_JOB_LOW);
  my $raw = '';
  my $i = 0;
  for my $t ((@types) x 4) {
    $i++;
    $raw .= GRTest::Conn::encode($t, 'pipe', "u$i", "d$i");
  }
  $c->send_raw($raw);
  my @h;
  for my $k (1 .. $i) {
    push @h, $c->expect(JOB_CREATED)->{data};
  }
  is(scalar(keys %{ { map { $_ => 1 } @h } }), $i,
     'pipelined submissions: one distinct handle per submission');
  # Map each handle to its unique through GRAB_JOB_UNIQ and check the
  # order of JOB_CREATED matched the order of submission.
  my $w = $srv->conn;
  $w->can_do('pipe');
  my %u_of;
  for my $k (1 .. $i) {
    my $a = $w->grab(GRAB_JOB_UNIQ);
    is($a->{name}, 'JOB_ASSIGN_UNIQ', "pipe job $k: JOB_ASSIGN_UNIQ") or last;
    my ($h, $f, $u, $d) = @{ $a->{args} };
    (my $n = $u) =~ s/^u//;
    is($d, "d$n", "pipe job $k: data matches its unique");
    $u_of{$h} = $u;
    $w->send_pkt(WORK_COMPLETE, $h, '');
  }
  is_deeply([map { $u_of{$_} } @h], [map { "u$_" } 1 .. $i],
            'JOB_CREATED handles are in submission order');
  is($w->grab->{name}, 'NO_JOB', 'queue drained: NO_JOB');
  $w->close;
  $c->close;
}

# --- EPOCH (due now) and REDUCE variants ---------------------------------
{
  my $c = $srv->conn;
  my $h = $c->submit_n(SUBMIT_JOB_EPOCH, 'ep', 'eu1', time() - 5, 'edata');
  handle_ok($h, 'SUBMIT_JOB_EPOCH');
  is_deeply($srv->prioritystatus->{ep}, [0, 1, 0, 0],
            'SUBMIT_JOB_EPOCH: normal priority');
  my $w = $srv->conn;
  $w->can_do('ep');
  my $a = $w->grab(GRAB_JOB_UNIQ);
  is_deeply($a->{args}, [$h, 'ep', 'eu1', 'edata'],
            'epoch job in the past runs now: JOB_ASSIGN_UNIQ handle, func, unique, data');
  $w->send_pkt(WORK_COMPLETE, $h, 'r');
  $w->sync;
  ok($c->quiet(0.2), 'SUBMIT_JOB_EPOCH is background: client told nothing');

  my $hr = $c->submit_n(SUBMIT_REDUCE_JOB, 'red', 'ru1', 'myreducer', '', 'rdata');
  handle_ok($hr, 'SUBMIT_REDUCE_JOB');
  my $hrb = $c->submit_n(SUBMIT_REDUCE_JOB_BACKGROUND, 'red', 'ru2', 'myreducer', '', 'rbdata');
  handle_ok($hrb, 'SUBMIT_REDUCE_JOB_BACKGROUND');
  is_deeply($srv->prioritystatus->{red}, [0, 2, 0, 0],
            'reduce submissions: normal priority');
  my $wr = $srv->conn;
  $wr->can_do('red');
  $a = $wr->grab(GRAB_JOB_ALL);
  is($a->{name}, 'JOB_ASSIGN_ALL', 'GRAB_JOB_ALL on a job with a reducer -> JOB_ASSIGN_ALL');
  is_deeply($a->{args}, [$hr, 'red', 'ru1', 'myreducer', 'rdata'],
            'JOB_ASSIGN_ALL is handle, function, unique, reducer, data');
  $wr->send_pkt(WORK_COMPLETE, $hr, 'reduced');
  is($c->expect(WORK_COMPLETE)->{data}, "$hr\0reduced",
     'SUBMIT_REDUCE_JOB is foreground: client gets WORK_COMPLETE');
  $a = $wr->grab(GRAB_JOB);
  is_deeply($a->{args}, [$hrb, 'red', 'rbdata'],
            'GRAB_JOB on a reduce job -> plain JOB_ASSIGN');
  $wr->send_pkt(WORK_COMPLETE, $hrb, '');
  $wr->sync;
  ok($c->quiet(0.2), 'SUBMIT_REDUCE_JOB_BACKGROUND: client told nothing');

  # GRAB_JOB_ALL on a job without a reducer gives JOB_ASSIGN_UNIQ.
  my $hn = $c->submit(SUBMIT_JOB_BG, 'red', 'plainu', 'plain');
  $a = $wr->grab(GRAB_JOB_ALL);
  is($a->{name}, 'JOB_ASSIGN_UNIQ', 'GRAB_JOB_ALL without a reducer -> JOB_ASSIGN_UNIQ');
  is_deeply($a->{args}, [$hn, 'red', 'plainu', 'plain'], 'JOB_ASSIGN_UNIQ arguments');
  $wr->send_pkt(WORK_COMPLETE, $hn, '');
  for my $g (GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL) {
    my $p = $wr->grab($g);
    is($p->{name}, 'NO_JOB', pkt_name($g) . ' on an empty queue -> NO_JOB');
    is($p->{data}, '', 'NO_JOB has no data');
  }
  $wr->close;
  $w->close;
  $c->close;
}

# --- payload bytes survive untouched (NULs, 1 MiB) -----------------------
{
  my $c = $srv->conn;
  my $big = join('', map { chr($_ % 256) } 0 .. (1 << 20) - 1);
  my $h = $c->submit(SUBMIT_JOB_BG, 'bin', '', "a\0b\0\0c");
  my $h2 = $c->submit(SUBMIT_JOB_BG, 'bin', '', $big);
  my $w = $srv->conn;
  $w->can_do('bin');
  is($w->grab->{args}[2], "a\0b\0\0c", 'payload with NUL bytes arrives intact');
  $w->send_pkt(WORK_COMPLETE, $h, '');
  my $a = $w->grab;
  is($a->{args}[0], $h2, '1 MiB job handle');
  ok($a->{args}[2] eq $big, '1 MiB payload arrives intact');
  $w->send_pkt(WORK_COMPLETE, $h2, '');
  $w->sync;
  $w->close;
  $c->close;
}

# --- a 64 MiB job to a sleeping worker, answered with its next GRAB_JOB ---
# The worker wakes as the job arrives, grabs it while the server may still
# be writing it, and sends its 64 MiB result and its next GRAB_JOB in one
# write, as a fast worker does. (gearraftd could refuse both when they
# reached one batch with the GRAB that had been answered ahead of its
# commit; t/25_big_batch makes such a batch every time.)
{
  my $MIB = 1 << 20;
  my $block = pack('N*', 0 .. $MIB / 4 - 1);
  # 64 MiB, every MiB tagged with its place.
  my $big = join('', map { sprintf('<%05d>', $_) . substr($block, 7) } 0 .. 63);
  my $result = reverse($big);
  my $w = $srv->conn;
  $w->can_do('big64');
  $w->send_pkt(PRE_SLEEP);
  $w->sync;
  my $c = $srv->conn;
  $c->send_pkt(SUBMIT_JOB, 'big64', '', $big);
  $w->expect(NOOP, 60);
  $w->send_pkt(GRAB_JOB);
  # Read the JOB_ASSIGN in large reads and answer at once, as a C worker
  # would: the answer then reaches the server while it may still be
  # writing the job.
  my $hdr = '';
  sysread($w->sock, $hdr, 12 - length $hdr, length $hdr) or die "read: $!"
    while length $hdr < 12;
  my ($magic, $type, $len) = unpack('a4NN', $hdr);
  is($type, JOB_ASSIGN, 'the woken worker is assigned the job');
  my $body = '';
  while (length $body < $len) {
    my $n = sysread($w->sock, $body, $len - length $body, length $body);
    die "read: $!" unless $n;
  }
  my ($handle) = split(/\0/, $body, 2);
  $w->send_raw(GRTest::Conn::encode(WORK_COMPLETE, $handle, $result)
               . GRTest::Conn::encode(GRAB_JOB));
  ok(substr($body, length($handle) + length('big64') + 2) eq $big,
     'its 64 MiB payload arrived whole');
  my $a = {args => [$handle]};
  my $h = $c->expect(JOB_CREATED, 60)->{data};
  is($h, $a->{args}[0], 'the client has its handle');
  my $done = $c->expect(WORK_COMPLETE, 60);
  ok($done->{args}[0] eq $h && $done->{args}[1] eq $result,
     'its 64 MiB result, sent with the next GRAB_JOB, arrives whole');
  is($w->expect(NO_JOB, 60)->{data}, '', 'and that GRAB_JOB finds the queue empty');
  $_->close for $w, $c;
}

# --- one connection as client and worker at once ---------------------------
{
  my $c = $srv->conn;
  $c->send_pkt(GRAB_JOB);
  is($c->expect(NO_JOB)->{data}, '', 'GRAB_JOB without CAN_DO -> NO_JOB');
  $c->can_do('self');
  my $h = $c->submit(SUBMIT_JOB, 'self', '', 'me');
  is_deeply($c->grab->{args}, [$h, 'self', 'me'], 'the submitting connection grabs its own job');
  $c->send_pkt(WORK_COMPLETE, $h, 'mine');
  is($c->expect(WORK_COMPLETE)->{data}, "$h\0mine", 'and receives its own WORK_COMPLETE');
  $c->close;
}

# --- empty function name -------------------------------------------------------
{
  my $c = $srv->conn;
  $c->send_pkt(SUBMIT_JOB_BG, '', '', 'x');
  my $p = $c->read_pkt;
  if (is_gearmand()) {
    is($p->{name}, 'JOB_CREATED', 'gearmand: an empty function name is accepted');
    like($srv->admin('status'), qr/^\t1\t0\t0\n/m, 'gearmand: and listed under an empty name');
  } else {
    is($p->{name}, 'ERROR', 'gearraftd: an empty function name is refused');
    is($p->{args}[0], 'INVALID_FUNCTION_NAME', 'gearraftd: ERROR INVALID_FUNCTION_NAME');
  }
  $c->close;
}

done_testing();
