package ebpf

// The generated sensor_x86_bpfel.go and .o are committed, so that building
// kubetrail needs no clang; 'make generate' rebuilds them with Debian's clang.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu" -target amd64 -type exec_record -type exit_record -type conn_record -type file_record -type header -type exclude sensor sensor.bpf.c
