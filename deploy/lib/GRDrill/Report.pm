# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/lib/GRDrill/Report.pm - what deploy/drill writes at the end:
# the report in Markdown (a table with one row per drill, then each
# drill's faults and findings) and throughput.svg (acknowledged submissions and jobs handed
# to workers per second over the whole run, each drill's faults shaded).
# Plain Perl: the SVG is written by hand, so nothing needs installing.
package GRDrill::Report;

use strict;
use warnings;

use POSIX ();

sub _esc {
  my ($s) = @_;
  $s =~ s/&/&amp;/g;
  $s =~ s/</&lt;/g;
  $s =~ s/>/&gt;/g;
  return $s;
}

sub _ms { return defined $_[0] ? sprintf('%.2f s', $_[0]) : '-'; }

# markdown(\%run, \@drills) -> the text of the Markdown report. %run: target, t0,
# t1, command; each drill: name, pass, why (failures), acked, lost,
# dups, dup_why, twice, failover, gap, new_leader, healed, heal_secs,
# drained, faults (lines), steps (lines), summary.
sub markdown {
  my ($run, $drills) = @_;
  my $ok = !grep { !$_->{pass} } @$drills;
  my @l;
  push @l, '# gearraft drill report', '';
  push @l, sprintf('- When: %s to %s UTC (%.0f s)', _utc($run->{t0}), _utc($run->{t1}),
                   $run->{t1} - $run->{t0});
  push @l, "- Target: $run->{target}";
  push @l, "- Command: `$run->{command}`";
  push @l, "- Load: $run->{load}";
  push @l, sprintf('- Verdict: **%s** (%d drills, %d passed)', $ok ? 'PASS' : 'FAIL',
                   scalar @$drills, scalar grep { $_->{pass} } @$drills);
  push @l, '', '![throughput](throughput.svg)', '';
  push @l, '| drill | failover | longest pause | new leader | acknowledged | lost | run twice | healed | verdict |';
  push @l, '|---|---:|---:|---:|---:|---:|---:|---|---|';
  for my $d (@$drills) {
    push @l, sprintf('| %s | %s | %s | %s | %d | %d | %d | %s | %s |', $d->{name},
                     _ms($d->{failover}), _ms($d->{gap}), _ms($d->{new_leader}),
                     $d->{acked}, $d->{lost}, $d->{dups},
                     $d->{healed} ? sprintf('yes, %.1f s', $d->{heal_secs}) : 'NO',
                     $d->{pass} ? 'pass' : '**FAIL**');
  }
  push @l, '', 'Columns: **failover**, from the moment the harm had surely taken effect',
    '(the command that did it returned) to the first acknowledgment of a',
    'submission sent after that, through any node; **longest pause**, the',
    'longest time without any acknowledgment between the first fault and the',
    'cluster healed; **new leader**, from the fault until a majority named a',
    'leader other than the harmed node (drills that harm the leader);',
    '**acknowledged**, jobs whose JOB_CREATED a client got; **lost**, of those,',
    'jobs no worker ever got; **run twice**, jobs a worker got again after the',
    'node of the worker that had it first was harmed; **healed**, every node',
    'back, following the same leader, caught up and healthy, and how long',
    'after the last fault ended. docs/operations.md, "Reading the report",',
    'says more.', '';
  for my $d (@$drills) {
    push @l, "## $d->{name}: " . ($d->{pass} ? 'pass' : 'FAIL'), '';
    push @l, "- What was done: $_" for @{ $d->{steps} };
    push @l, "- Fault windows: " . (join('; ', @{ $d->{faults} }) || 'none');
    push @l, "- Failed because: $_" for @{ $d->{why} };
    push @l, sprintf('- Run twice: %d (%s); keys that ran under two attempts (sent again after '
                     . 'no acknowledgment): %d', $d->{dups},
                     join(', ', map { "$_: $d->{dup_why}{$_}" } sort keys %{ $d->{dup_why} })
                       || 'none', $d->{twice});
    push @l, sprintf('- Drained: %s', $d->{drained} ? 'yes, nothing queued or running at the end'
                                                    : 'NO');
    push @l, "- History: $d->{summary}", '';
  }
  return join("\n", @l) . "\n";
}

sub _utc { return POSIX::strftime('%Y-%m-%d %H:%M:%S', gmtime($_[0])); }

# svg(\%run, \@drills, \@acks, \@runs) -> the text of throughput.svg:
# @acks and @runs are times (epoch seconds) of acknowledgments and
# handouts; each drill has t0, t1 and fault windows [what, node, t0, t1].
sub svg {
  my ($run, $drills, $acks, $runs) = @_;
  my ($W, $H, $L, $R, $T, $B) = (1100, 380, 60, 20, 40, 50);
  my ($t0, $t1) = ($run->{t0}, $run->{t1});
  my $span = $t1 - $t0 || 1;
  my $n = POSIX::ceil($span);
  my (@a, @r);
  $a[int($_ - $t0)]++ for grep { $_ >= $t0 && $_ < $t1 } @$acks;
  $r[int($_ - $t0)]++ for grep { $_ >= $t0 && $_ < $t1 } @$runs;
  my $max = 1;
  for my $i (0 .. $n - 1) {
    $max = $a[$i] if ($a[$i] // 0) > $max;
    $max = $r[$i] if ($r[$i] // 0) > $max;
  }
  my $step = _nice($max / 5);
  my $ytop = POSIX::ceil($max / $step) * $step;
  my $x = sub { return $L + ($_[0] - $t0) / $span * ($W - $L - $R); };
  my $y = sub { return $H - $B - $_[0] / $ytop * ($H - $T - $B); };
  my @s;
  push @s, qq(<svg xmlns="http://www.w3.org/2000/svg" width="$W" height="$H" ),
           qq(viewBox="0 0 $W $H" font-family="sans-serif" font-size="11">\n);
  push @s, qq(<rect x="0" y="0" width="$W" height="$H" fill="white"/>\n);
  push @s, sprintf(qq(<text x="%d" y="18" font-size="14">%s</text>\n), $L,
                   _esc("gearraft drills: jobs per second ($run->{target_short})"));
  for my $d (@$drills) {
    my ($xa, $xb) = ($x->($d->{t0}), $x->($d->{t1}));
    push @s, sprintf(qq(<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="3,3"/>\n),
                     $xa, $T, $xa, $H - $B);
    push @s, sprintf(qq(<text x="%.1f" y="%d" fill="%s">%s</text>\n), $xa + 3, $T - 4,
                     $d->{pass} ? '#333' : '#c00', _esc($d->{name} . ($d->{pass} ? '' : ' (FAIL)')));
    for my $f (@{ $d->{windows} }) {
      my ($what, $node, $fa, $fb) = @$f;
      my ($xf, $xg) = ($x->($fa), $x->($fb // $d->{t1}));
      $xg = $xf + 1 if $xg - $xf < 1;
      push @s, sprintf(qq(<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#e33" fill-opacity="0.18"/>\n),
                       $xf, $T, $xg - $xf, $H - $T - $B);
      push @s, sprintf(qq(<text x="%.1f" y="%d" fill="#a00" font-size="9">%s</text>\n),
                       $xf + 2, $T + 10 + 10 * ($f->[4] // 0), _esc("$what $node"));
    }
  }
  for (my $v = 0; $v <= $ytop; $v += $step) {
    push @s, sprintf(qq(<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>\n),
                     $L, $y->($v), $W - $R, $y->($v));
    push @s, sprintf(qq(<text x="%d" y="%.1f" text-anchor="end">%d</text>\n), $L - 4, $y->($v) + 4, $v);
  }
  my $xs = _nice($span / 12);
  for (my $v = 0; $v <= $span; $v += $xs) {
    push @s, sprintf(qq(<text x="%.1f" y="%d" text-anchor="middle">%d s</text>\n),
                     $x->($t0 + $v), $H - $B + 16, $v);
  }
  push @s, sprintf(qq(<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>\n),
                   $L, $H - $B, $W - $R, $H - $B);
  # The acknowledgments under, wider, so that the handouts on top of
  # them leave both visible where they are equal.
  for my $series ([\@a, '#1f5fbf', 3.5], [\@r, '#2a9d3a', 1.5]) {
    my ($c, $col, $w) = @$series;
    my $pts = join(' ', map { sprintf('%.1f,%.1f', $x->($t0 + $_ + 0.5), $y->($c->[$_] // 0)) } 0 .. $n - 1);
    push @s, qq(<polyline fill="none" stroke="$col" stroke-width="$w" points="$pts"/>\n);
  }
  my $ly = $H - 14;
  push @s, qq(<line x1="$L" y1="$ly" x2="@{[$L + 20]}" y2="$ly" stroke="#1f5fbf" stroke-width="2"/>\n),
           sprintf(qq(<text x="%d" y="%d">acknowledged submissions per s</text>\n), $L + 25, $ly + 4),
           sprintf(qq(<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#2a9d3a" stroke-width="2"/>\n),
                   $L + 240, $ly, $L + 260, $ly),
           sprintf(qq(<text x="%d" y="%d">jobs handed to workers per s</text>\n), $L + 265, $ly + 4),
           sprintf(qq(<rect x="%d" y="%d" width="20" height="10" fill="#e33" fill-opacity="0.18"/>\n),
                   $L + 470, $ly - 5),
           sprintf(qq(<text x="%d" y="%d">a fault (what, node)</text>\n), $L + 495, $ly + 4);
  push @s, "</svg>\n";
  return join('', @s);
}

# A round step near $v: 1, 2 or 5 times a power of ten.
sub _nice {
  my ($v) = @_;
  return 1 if $v <= 1;
  my $p = 10 ** POSIX::floor(log($v) / log(10));
  for my $m (1, 2, 5, 10) {
    return $m * $p if $m * $p >= $v;
  }
  return 10 * $p;
}

1;
