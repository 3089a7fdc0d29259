# perl workload for the real-program tests: hashes, regular expressions, sort.
use strict;
use warnings;

my %count;
my @lines = map { "line $_: alpha=" . ($_ * 3) . " beta=" . ($_ % 17) . " gamma" } 1 .. 3000;
for my $line (@lines) {
    while ($line =~ /(\w+)=(\d+)/g) {
        $count{$1} += $2;
    }
}
my %words;
$words{$_}++ for map { split /\s+/ } @lines;
my @top = (sort { $words{$b} <=> $words{$a} || $a cmp $b } keys %words)[0 .. 4];
my @sorted = sort { $a <=> $b } map { ($_ * 7919) % 10007 } 1 .. 5000;
my $joined = join ",", @sorted[0 .. 9];
(my $replaced = join(" ", @lines[0 .. 2])) =~ s/alpha/ALPHA/g;
print "sums: ", join(" ", map { "$_=$count{$_}" } sort keys %count), "\n";
print "top: @top\n";
print "sorted: $joined\n";
print "replaced: $replaced\n";
