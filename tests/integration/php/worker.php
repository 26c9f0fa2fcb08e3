<?php
// SPDX-License-Identifier: BSD-3-Clause
// PHP gearman-extension worker driven by t/12_php.t:
//   php worker.php HOST PORT COUNT
// Runs COUNT jobs, then exits 0. Prints nothing on success.
$host = $argv[1];
$port = (int)$argv[2];
$count = (int)$argv[3];

$w = new GearmanWorker();
$w->addServer($host, $port);
$w->setId('php-worker');
$w->addFunction('php_upper', function (GearmanJob $job) {
    return strtoupper($job->workload());
});
$w->addFunction('php_progress', function (GearmanJob $job) {
    $job->sendStatus(1, 3);
    $job->sendData('part1');
    $job->sendWarning('warn1');
    $job->sendStatus(3, 3);
    return 'finished:' . $job->unique();
});
$w->addFunction('php_fail', function (GearmanJob $job) {
    $job->sendFail();
    return null;
});
$w->addFunction('php_exc', function (GearmanJob $job) {
    $job->sendException('php exception text');
    return null;
});
$w->addFunction('php_log', function (GearmanJob $job) {
    file_put_contents(getenv('PHP_LOG'), $job->workload() . "\n", FILE_APPEND);
    return '';
});
for ($i = 0; $i < $count; $i++) {
    if (!$w->work()) {
        fwrite(STDERR, "work failed: " . $w->error() . "\n");
        exit(1);
    }
}
exit(0);
