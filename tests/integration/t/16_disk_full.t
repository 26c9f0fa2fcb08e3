# SPDX-License-Identifier: BSD-3-Clause
# A full file system under the data directory: gearraftd's data dir sits
# on a 24 MiB tmpfs that another file fills up to a few MiB. Submissions
# are refused with ERROR QUEUE_ERROR once less than --min-free-space is
# left, everything else keeps working, every acknowledged job survives a
# SIGKILL, and once the other file is gone submissions are accepted
# again. Needs root (mount); skipped otherwise, and on gearmand.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use GRTest;
use Test::More;
use File::Temp ();

plan(skip_all => 'a full disk is a gearraftd case') unless is_gearraftd();
plan(skip_all => 'needs root to mount a small tmpfs') unless $> == 0;

my $mnt = File::Temp::tempdir('gr-diskfull-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system('mount', '-t', 'tmpfs', '-o', 'size=24m', 'gr-diskfull', $mnt) == 0
  or plan(skip_all => 'cannot mount a tmpfs here');
END { system('umount', '-l', $mnt) if $mnt; }

# Leave about 6 MiB free; the node refuses below 2 MiB.
my $filler = "$mnt/filler";
system('dd', 'if=/dev/zero', "of=$filler", 'bs=1M', 'count=18', 'status=none') == 0
  or die 'dd failed';

my $srv = start_server(need_own => 1,
                       args => ['--data-dir', "$mnt/data",
                                '--min-free-space', '2M']);
my $PAYLOAD = 32 * 1024;
sub payload { my ($i) = @_; return sprintf('job-%05d:', $i) . ('y' x $PAYLOAD); }

my $c = $srv->conn;
my (%acked, $refusal);
for my $i (1 .. 400) {
  $c->send_pkt(SUBMIT_JOB_BG, 'disk', '', payload($i));
  my $p = $c->read_pkt(20);
  die 'no answer to a submission' unless $p;
  if ($p->{type} == JOB_CREATED) { $acked{ $p->{data} } = $i; next; }
  $refusal = $p;
  last;
}
ok($refusal, sprintf('refused after %d acknowledged jobs', scalar keys %acked));
is($refusal && $refusal->{args}[0], 'QUEUE_ERROR', 'with ERROR QUEUE_ERROR');
cmp_ok(scalar keys %acked, '>=', 10, 'the free space held a fair number of jobs first');
$c->sync;
pass('the refused client is still served');
is($srv->status->{disk}[0], scalar keys %acked, 'status counts exactly the acknowledged jobs');

$c->close;
$srv->crash_restart;
is($srv->status->{disk}[0], scalar keys %acked, 'after SIGKILL: every acknowledged job is queued');

# Room again once the other file goes.
unlink $filler or die "unlink: $!";
my $again = wait_until(sub { $srv->submit_accepted('disk', 'after room was made') }, 20);
ok($again, 'submissions are accepted again once there is room');

my $w = $srv->conn;
$w->can_do('disk');
my $n = 0;
while (1) {
  my $a = $w->grab;
  last unless $a->{type} == JOB_ASSIGN;
  my ($h, undef, $data) = @{ $a->{args} };
  $n++ if defined $acked{$h} && $data eq payload($acked{$h});
  $w->send_pkt(WORK_COMPLETE, $h, '');
}
is($n, scalar keys %acked, 'every acknowledged job ran with its bytes');
$srv->stop(20);
done_testing();
