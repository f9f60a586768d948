// The generated header compiles as C++11 and declares C linkage.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdio>
#include <type_traits>

static_assert(VIR_ERR_NO_DOMAIN == 42, "enumerators usable in constant expressions");
static_assert(std::is_same<decltype(&virConnectOpen), virConnectPtr (*)(const char *)>::value,
              "prototype seen from C++");

int main()
{
    std::printf("ok 1 - header compiles as C++11\n1..1\n");
    return 0;
}
