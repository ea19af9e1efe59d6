double expected_load(double recent, double history)
{
    return (pf_max(((recent - history)), (recent)) + pf_min(17.6, pf_min((recent), (history))));
}

double replica_score(double load, double count)
{
    return pf_div((load), (count));
}

double pack_key(double weight, double index)
{
    return pf_log((weight));
}

double bin_cost(double bin_load, double bin_count, double capacity, double weight)
{
    return pf_min((bin_load), (bin_load));
}
