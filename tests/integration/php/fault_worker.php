<?php
// SPDX-License-Identifier: BSD-3-Clause
// PHP gearman-extension worker for the fault tests (lib/GRLoad.pm):
//   php fault_worker.php HOST PORT FUNC LOG NODE WID STOPFILE
// Runs jobs of FUNC, appending "H PAYLOAD HANDLE NODE TIME WID" to LOG for
// each one before it completes; exits 0 once STOPFILE exists, 3 when the
// server fails it (the caller goes on elsewhere).
$host = $argv[1];
$port = (int)$argv[2];
$func = $argv[3];
$log = $argv[4];
$node = $argv[5];
$wid = $argv[6];
$stop = $argv[7];

$w = new GearmanWorker();
$w->addServer($host, $port);
$w->setTimeout(1000);
$w->addFunction($func, function (GearmanJob $job) use ($log, $node, $wid) {
    $line = sprintf("H %s %s %s %.6f %s\n", $job->workload(), $job->handle(),
                    $node, microtime(true), $wid);
    file_put_contents($log, $line, FILE_APPEND);
    return '';
});
$idle = 0;
while (!file_exists($stop)) {
    if (@$w->work()) {
        $idle = 0;
        continue;
    }
    $rc = $w->returnCode();
    if ($rc == GEARMAN_TIMEOUT && ++$idle < 6) {
        continue;
    }
    exit(3);
}
exit(0);
