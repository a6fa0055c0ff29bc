-- Reserved for the container wire (issue 17); filled on that branch.
SELECT 1;
