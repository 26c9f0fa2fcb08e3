<?php
// SPDX-License-Identifier: BSD-3-Clause
// PHP gearman-extension client driven by t/12_php.t:
//   php client.php HOST PORT MODE
// Prints one line per observation; the test compares them exactly.
$host = $argv[1];
$port = (int)$argv[2];
$mode = $argv[3];

$c = new GearmanClient();
$c->addServer($host, $port);
$c->setTimeout(20000);

function rc_name($rc) {
    $names = [GEARMAN_SUCCESS => 'SUCCESS', GEARMAN_WORK_FAIL => 'WORK_FAIL',
              GEARMAN_WORK_EXCEPTION => 'WORK_EXCEPTION', GEARMAN_TIMEOUT => 'TIMEOUT'];
    return $names[$rc] ?? "RC$rc";
}

switch ($mode) {
case 'do':
    echo 'normal ', $c->doNormal('php_upper', 'hello'), ' ', rc_name($c->returnCode()), "\n";
    echo 'high ', $c->doHigh('php_upper', 'high'), "\n";
    echo 'low ', $c->doLow('php_upper', 'low'), "\n";
    echo 'binary ', bin2hex($c->doNormal('php_upper', "a\0b")), "\n";
    break;
case 'progress':
    $c->setStatusCallback(function ($t) { echo 'status ', $t->taskNumerator(), '/', $t->taskDenominator(), "\n"; });
    $c->setDataCallback(function ($t) { echo 'data ', $t->data(), "\n"; });
    $c->setWarningCallback(function ($t) { echo 'warning ', $t->data(), "\n"; });
    $c->setCompleteCallback(function ($t) { echo 'complete ', $t->data(), "\n"; });
    $c->addTask('php_progress', 'x', null, 'uniq-p');
    $c->runTasks();
    echo 'rc ', rc_name($c->returnCode()), "\n";
    break;
case 'fail':
    $r = $c->doNormal('php_fail', 'x');
    echo 'fail rc ', rc_name($c->returnCode()), "\n";
    break;
case 'exception':
    $c->setExceptionCallback(function ($t) { echo 'exception ', $t->data(), "\n"; });
    $c->setFailCallback(function ($t) { echo "failcb\n"; });
    $c->addTask('php_exc', 'x');
    $c->runTasks();
    break;
case 'exception_do':
    // No exception callback: the failure shows in the return code.
    $c->doNormal('php_exc', 'x');
    echo 'exception_do rc ', rc_name($c->returnCode()), "\n";
    break;
case 'background':
    $h = $c->doBackground('php_log', 'bg-normal');
    echo 'bg rc ', rc_name($c->returnCode()), "\n";
    $hh = $c->doHighBackground('php_log', 'bg-high');
    $hl = $c->doLowBackground('php_log', 'bg-low');
    $st = $c->jobStatus($h);
    echo 'status known=', $st[0] ? 1 : 0, ' running=', $st[1] ? 1 : 0,
         ' ', $st[2], '/', $st[3], "\n";
    $st = $c->jobStatus('H:nohost:12345');
    echo 'unknown known=', $st[0] ? 1 : 0, "\n";
    echo "handles $h $hh $hl\n";
    break;
case 'tasks':
    $res = [];
    $c->setCompleteCallback(function ($t) use (&$res) { $res[] = $t->unique() . '=' . $t->data(); });
    for ($i = 1; $i <= 10; $i++) {
        $c->addTask('php_upper', "t$i", null, "u$i");
    }
    $c->runTasks();
    sort($res);
    echo implode(' ', $res), "\n";
    break;
case 'ping':
    echo 'ping ', $c->ping('abc') ? 'ok' : 'fail', "\n";
    break;
default:
    fwrite(STDERR, "unknown mode $mode\n");
    exit(2);
}
exit(0);
