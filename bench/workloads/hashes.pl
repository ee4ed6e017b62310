# Hash and array churn for the perl workload of scripts/bench.sh: N keys, each with a small array,
# a third deleted, the rest sorted and joined. Usage: perl bench/workloads/hashes.pl N
use strict;
use warnings;

my $n = shift or die "usage: hashes.pl N\n";
my %h;
for my $i (1 .. $n) {
  $h{"key$i"} = [$i, "v" x ($i % 50), { x => $i % 7 }];
}
for my $i (1 .. $n) {
  delete $h{"key$i"} if $i % 3 == 0;
}
my @k = sort keys %h;
my $total = 0;
$total += $h{$_}[0] for @k;
print scalar(@k), " ", $total, "\n";
