module dtap-lab/small

go 1.26.0
